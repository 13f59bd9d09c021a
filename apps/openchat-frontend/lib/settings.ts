/** Per-conversation chat settings, persisted in localStorage, plus defaults for new chats. */
import type { ChatData, ConversationOut } from "./api-client";

export interface ChatSettings {
  model: string | null;
  prompt: string;
  temperature: number;
  top_p: number;
  max_tokens: number | null;
}

export const DEFAULT_SETTINGS: ChatSettings = {
  model: null,
  prompt: "",
  temperature: 0.7,
  top_p: 0.95,
  max_tokens: null,
};

const PREFIX = "openchat:settings:";
const DEFAULT_KEY = `${PREFIX}default`;

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}

/** Fills in and sanitises a partial settings object. */
export function normalizeSettings(value: unknown, base: ChatSettings = DEFAULT_SETTINGS): ChatSettings {
  const v = (typeof value === "object" && value !== null ? value : {}) as Partial<Record<keyof ChatSettings, unknown>>;
  const num = (x: unknown): number | null => (typeof x === "number" && Number.isFinite(x) ? x : null);
  const maxTokens = num(v.max_tokens);
  return {
    model: typeof v.model === "string" && v.model ? v.model : v.model === null ? null : base.model,
    prompt: typeof v.prompt === "string" ? v.prompt : base.prompt,
    temperature: clamp(num(v.temperature) ?? base.temperature, 0, 2),
    top_p: clamp(num(v.top_p) ?? base.top_p, 0, 1),
    max_tokens:
      maxTokens !== null && maxTokens >= 1
        ? Math.round(maxTokens)
        : v.max_tokens === null
          ? null
          : base.max_tokens,
  };
}

function read(key: string): unknown {
  if (typeof window === "undefined") return null;
  try {
    const raw = window.localStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function write(key: string, value: ChatSettings): void {
  if (typeof window === "undefined") return;
  try {
    window.localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // storage full or disabled: settings stay in memory
  }
}

export function loadDefaultSettings(): ChatSettings {
  return normalizeSettings(read(DEFAULT_KEY));
}

/** Settings for conversation `id`: stored ones, else the server's, else the defaults. */
export function loadSettings(id: string, server?: ConversationOut["settings"] | null): ChatSettings {
  const defaults = loadDefaultSettings();
  const stored = read(PREFIX + id);
  if (stored) return normalizeSettings(stored, defaults);
  if (server) {
    const cleaned = Object.fromEntries(
      Object.entries(server).filter(([k, v]) => v !== null && v !== undefined || k === "max_tokens"),
    );
    return normalizeSettings(cleaned, defaults);
  }
  return defaults;
}

export function saveSettings(id: string | null, settings: ChatSettings): void {
  if (id) write(PREFIX + id, settings);
  write(DEFAULT_KEY, settings);
}

export function forgetSettings(id: string): void {
  if (typeof window === "undefined") return;
  try {
    window.localStorage.removeItem(PREFIX + id);
  } catch {
    // ignore
  }
}

/** The `data` object for POST /chat (unset options are left to the server). */
export function toRequestData(s: ChatSettings): ChatData {
  const data: ChatData = { temperature: s.temperature, top_p: s.top_p };
  if (s.model) data.model = s.model;
  if (s.prompt.trim()) data.prompt = s.prompt;
  if (s.max_tokens) data.max_tokens = s.max_tokens;
  return data;
}
