/**
 * A chat's settings (model, system prompt, sampling) and where they come from.
 *
 * - An existing conversation's settings live on the server: they are what
 *   GET /conversations/{id} returns, and a change is saved there (PATCH). Nothing about a
 *   conversation is kept in localStorage.
 * - A new chat starts with the model last chosen, the chosen model's default sampling, and no
 *   system prompt unless one was saved with "Use for new chats". Those two values are the only
 *   settings kept in localStorage (NEW_CHAT_KEY).
 * - Sampling defaults and ranges come from the model (GET /models, `sampling`): `null` in
 *   ChatSettings means "the model's default", and `resolveSettings` turns it into the number
 *   shown and sent, clamped to the model's range.
 */
import type { ChatData, ModelOut, SamplingRange, StoredSettings } from "./api-client";

export type SamplingKey = "temperature" | "top_p" | "max_tokens";
export const SAMPLING_KEYS: readonly SamplingKey[] = ["temperature", "top_p", "max_tokens"];

export interface ChatSettings {
  /** A model id; null = the server's default model. */
  model: string | null;
  prompt: string;
  /** null = the model's default. */
  temperature: number | null;
  top_p: number | null;
  max_tokens: number | null;
}

/** What a new chat starts with (saved in localStorage). */
export interface NewChatDefaults {
  model: string | null;
  /** Saved with "Use for new chats"; null = new chats have no system prompt. */
  prompt: string | null;
}

const NEW_CHAT_KEY = "openchat:new-chat";
/** Before settings moved to the server: one key per conversation plus `…default`. */
const LEGACY_PREFIX = "openchat:settings:";

function storage(): Storage | null {
  try {
    return typeof window === "undefined" ? null : window.localStorage;
  } catch {
    return null; // storage disabled
  }
}

/** Removes the per-conversation settings an older version kept in localStorage. */
export function removeLegacySettings(): void {
  const store = storage();
  if (!store) return;
  try {
    const keys = Array.from({ length: store.length }, (_, i) => store.key(i));
    for (const key of keys) if (key?.startsWith(LEGACY_PREFIX)) store.removeItem(key);
  } catch {
    // ignore
  }
}

export function loadNewChatDefaults(): NewChatDefaults {
  let value: Partial<Record<keyof NewChatDefaults, unknown>> = {};
  try {
    const raw = storage()?.getItem(NEW_CHAT_KEY);
    const parsed: unknown = raw ? JSON.parse(raw) : null;
    if (typeof parsed === "object" && parsed !== null) value = parsed;
  } catch {
    // unreadable: start from nothing
  }
  return {
    model: typeof value.model === "string" && value.model ? value.model : null,
    prompt: typeof value.prompt === "string" && value.prompt.trim() ? value.prompt : null,
  };
}

export function saveNewChatDefaults(change: Partial<NewChatDefaults>): void {
  try {
    storage()?.setItem(NEW_CHAT_KEY, JSON.stringify({ ...loadNewChatDefaults(), ...change }));
  } catch {
    // storage full or disabled: new chats use the model's defaults
  }
}

export function newChatSettings(defaults: NewChatDefaults = loadNewChatDefaults()): ChatSettings {
  return { model: defaults.model, prompt: defaults.prompt ?? "", temperature: null, top_p: null, max_tokens: null };
}

const finite = (x: unknown): number | null => (typeof x === "number" && Number.isFinite(x) ? x : null);

/** A conversation's settings as the server stored them. */
export function fromStoredSettings(stored: StoredSettings | null | undefined): ChatSettings {
  return {
    model: stored?.model || null,
    prompt: stored?.prompt ?? "",
    temperature: finite(stored?.temperature),
    top_p: finite(stored?.top_p),
    max_tokens: finite(stored?.max_tokens),
  };
}

/** The options that differ between two settings, as a PATCH body (`null` clears one). */
export function changedSettings(before: ChatSettings, after: ChatSettings): Partial<ChatSettings> {
  const changes: Partial<Record<keyof ChatSettings, unknown>> = {};
  for (const key of ["model", "prompt", ...SAMPLING_KEYS] as const) {
    if (before[key] !== after[key]) changes[key] = after[key];
  }
  return changes as Partial<ChatSettings>;
}

export function clampToRange(value: number, range: SamplingRange): number {
  return Math.min(range.max, Math.max(range.min, value));
}

/** The decimals of a range's step (0.05 → 2), to round a slider's value to. */
export function stepDecimals(range: SamplingRange): number {
  const [, fraction = ""] = String(range.step).split(".");
  return fraction.length;
}

/**
 * The model these settings use: the chosen one if the server lists it, else the default
 * model (a chat never sends a model the server no longer has).
 */
export function selectedModel(settings: ChatSettings, models: ModelOut[]): ModelOut | null {
  return models.find((m) => m.id === settings.model) ?? models.find((m) => m.default) ?? models[0] ?? null;
}

export type ResolvedSettings = {
  model: string | null;
  prompt: string;
  /** null only while the models are unknown (then the server's defaults apply). */
  temperature: number | null;
  top_p: number | null;
  max_tokens: number | null;
};

/** The values shown and sent: the model's default where none was chosen, within its range. */
export function resolveSettings(settings: ChatSettings, model: ModelOut | null): ResolvedSettings {
  const value = (key: SamplingKey): number | null => {
    if (!model) return settings[key];
    const range = model.sampling[key];
    return clampToRange(settings[key] ?? range.default, range);
  };
  return {
    model: model?.id ?? settings.model,
    prompt: settings.prompt,
    temperature: value("temperature"),
    top_p: value("top_p"),
    max_tokens: value("max_tokens"),
  };
}

/** The `data` object for POST /chat (options still unknown are left to the server). */
export function toRequestData(s: ResolvedSettings): ChatData {
  const data: ChatData = {};
  if (s.model) data.model = s.model;
  if (s.prompt.trim()) data.prompt = s.prompt;
  for (const key of SAMPLING_KEYS) {
    const value = s[key];
    if (value !== null) data[key] = value;
  }
  return data;
}
