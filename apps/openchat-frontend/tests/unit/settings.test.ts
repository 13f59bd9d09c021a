import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { ModelOut } from "@/lib/api-client";
import {
  changedSettings,
  fromStoredSettings,
  loadNewChatDefaults,
  newChatSettings,
  removeLegacySettings,
  resolveSettings,
  saveNewChatDefaults,
  selectedModel,
  stepDecimals,
  toRequestData,
  type ChatSettings,
} from "@/lib/settings";

function model(id: string, extra: Partial<ModelOut> = {}): ModelOut {
  return {
    id,
    name: id,
    provider: "local",
    context_length: 8192,
    default: false,
    sampling: {
      temperature: { default: 0.6, min: 0, max: 2, step: 0.05 },
      top_p: { default: 0.9, min: 0.01, max: 1, step: 0.01 },
      max_tokens: { default: 1024, min: 1, max: 8191, step: 1 },
    },
    ...extra,
  };
}

const small = model("small", { default: true });
const big = model("big", {
  context_length: 32768,
  sampling: { ...small.sampling, max_tokens: { default: 2048, min: 1, max: 32767, step: 1 } },
});
const settings = (extra: Partial<ChatSettings> = {}): ChatSettings => ({ ...newChatSettings({ model: null, prompt: null }), ...extra });

describe("resolving settings against the model", () => {
  it("fills in the model's defaults where nothing was chosen", () => {
    expect(resolveSettings(settings(), small)).toEqual({
      model: "small",
      prompt: "",
      temperature: 0.6,
      top_p: 0.9,
      max_tokens: 1024,
    });
  });

  it("keeps chosen values, clamped to the model's range (what is shown is what is sent)", () => {
    const chosen = settings({ model: "big", temperature: 0.2, top_p: 0, max_tokens: 100_000 });
    expect(resolveSettings(chosen, big)).toMatchObject({ temperature: 0.2, top_p: 0.01, max_tokens: 32767 });
    // The same settings on the smaller model: its own maximum.
    expect(resolveSettings(chosen, small).max_tokens).toBe(8191);
  });

  it("leaves options to the server while the models are unknown", () => {
    const resolved = resolveSettings(settings({ model: "gone", temperature: 0.3 }), null);
    expect(resolved).toEqual({ model: "gone", prompt: "", temperature: 0.3, top_p: null, max_tokens: null });
    expect(toRequestData(resolved)).toEqual({ model: "gone", temperature: 0.3 });
  });

  it("uses the default model when the chosen one is no longer listed", () => {
    expect(selectedModel(settings({ model: "big" }), [small, big])?.id).toBe("big");
    expect(selectedModel(settings({ model: "gone" }), [big, small])?.id).toBe("small");
    expect(selectedModel(settings(), [])).toBeNull();
  });

  it("builds the request's data; a blank prompt is not sent", () => {
    expect(toRequestData(resolveSettings(settings({ prompt: "  " }), small))).toEqual({
      model: "small",
      temperature: 0.6,
      top_p: 0.9,
      max_tokens: 1024,
    });
    expect(toRequestData(resolveSettings(settings({ prompt: "Be brief." }), small)).prompt).toBe("Be brief.");
  });

  it("rounds slider values to the step's decimals", () => {
    expect(stepDecimals(small.sampling.temperature)).toBe(2);
    expect(stepDecimals(small.sampling.max_tokens)).toBe(0);
  });
});

describe("the server's stored settings", () => {
  it("are what a conversation shows (null: the model's default)", () => {
    expect(fromStoredSettings({ model: "big", prompt: null, temperature: 0.2, top_p: null, max_tokens: 300 })).toEqual({
      model: "big",
      prompt: "",
      temperature: 0.2,
      top_p: null,
      max_tokens: 300,
    });
  });

  it("are changed with only the options that differ", () => {
    const before = settings({ model: "small", temperature: 0.2 });
    expect(changedSettings(before, { ...before, temperature: 1, prompt: "Hi" })).toEqual({ temperature: 1, prompt: "Hi" });
    expect(changedSettings(before, { ...before, temperature: null })).toEqual({ temperature: null });
    expect(changedSettings(before, { ...before })).toEqual({});
  });
});

describe("new-chat defaults in localStorage", () => {
  let store: Map<string, string>;
  beforeEach(() => {
    store = new Map();
    const localStorage = {
      get length() {
        return store.size;
      },
      key: (i: number) => [...store.keys()][i] ?? null,
      getItem: (k: string) => store.get(k) ?? null,
      setItem: (k: string, v: string) => void store.set(k, v),
      removeItem: (k: string) => void store.delete(k),
    };
    vi.stubGlobal("window", { localStorage });
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("start with no model and no system prompt", () => {
    expect(newChatSettings()).toEqual({ model: null, prompt: "", temperature: null, top_p: null, max_tokens: null });
  });

  it("keep the last chosen model, and a prompt only when saved for new chats", () => {
    saveNewChatDefaults({ model: "big" });
    expect(newChatSettings()).toMatchObject({ model: "big", prompt: "" });
    saveNewChatDefaults({ prompt: "You are a pirate." });
    expect(newChatSettings()).toMatchObject({ model: "big", prompt: "You are a pirate.", temperature: null });
    saveNewChatDefaults({ prompt: null });
    expect(loadNewChatDefaults()).toEqual({ model: "big", prompt: null });
  });

  it("ignore and remove the per-conversation settings of older versions", () => {
    store.set("openchat:settings:default", JSON.stringify({ prompt: "old", temperature: 0, max_tokens: 64 }));
    store.set("openchat:settings:abc", JSON.stringify({ prompt: "stale" }));
    store.set("openchat:layout", "{}");
    expect(newChatSettings()).toEqual({ model: null, prompt: "", temperature: null, top_p: null, max_tokens: null });
    removeLegacySettings();
    expect([...store.keys()]).toEqual(["openchat:layout"]);
  });

  it("survive unreadable storage", () => {
    store.set("openchat:new-chat", "{not json");
    expect(loadNewChatDefaults()).toEqual({ model: null, prompt: null });
  });
});
