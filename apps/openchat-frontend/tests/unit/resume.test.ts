import { describe, expect, it } from "vitest";

import type { ConversationSummary } from "@/lib/api-client";
import { chatReducer, chatRequest, initialChatState, type ChatAction, type ChatMessage, type ChatState } from "@/lib/chat-state";
import { anyGenerating, appendReplayed, isOtherReply, mergeSummaries, reattachDelayMs, shouldAttach } from "@/lib/resume";
import { resolveSettings } from "@/lib/settings";

const user = (id: string, content: string): ChatMessage => ({ id, role: "user", content, status: "complete" });
const ai = (id: string, content: string, extra: Partial<ChatMessage> = {}): ChatMessage => ({
  id,
  serverId: id,
  role: "ai",
  content,
  status: "complete",
  ...extra,
});

function reduce(state: ChatState, ...actions: ChatAction[]): ChatState {
  return actions.reduce(chatReducer, state);
}
const token = (content: string): ChatAction => ({ type: "event", event: { type: "token", content } });
const start: ChatAction = { type: "event", event: { type: "start", id: "c", message_id: "m2", model: "qwen" } };

/** A conversation opened while its reply generates: the text stored so far is "One, two". */
const opened = reduce(initialChatState, {
  type: "load",
  messages: [user("u1", "Count"), ai("m2", "One, two", { status: "generating" })],
});

describe("deciding to attach", () => {
  it("attaches when the last message is a reply still generating, and only then", () => {
    expect(shouldAttach(opened.messages)).toBe(true);
    expect(shouldAttach([user("u1", "Count"), ai("m2", "One", { status: "complete" })])).toBe(false);
    expect(shouldAttach([user("u1", "Count"), ai("m2", "One", { status: "interrupted" })])).toBe(false);
    expect(shouldAttach([ai("m1", "Hi", { status: "generating" }), user("u2", "Next")])).toBe(false);
    expect(shouldAttach([])).toBe(false);
  });

  it("asks again for a reply still starting (204) soon, then every 2 s, and gives up after about half a minute", () => {
    expect([0, 1, 2, 3].map(reattachDelayMs)).toEqual([500, 1000, 2000, 2000]);
    let total = 0;
    let attempt = 0;
    for (let delay = reattachDelayMs(attempt); delay !== null; delay = reattachDelayMs(++attempt)) total += delay;
    expect(total).toBeGreaterThanOrEqual(25_000);
    expect(total).toBeLessThanOrEqual(35_000);
  });

  it("tells another reply from the one shown by the stream's message id", () => {
    expect(isOtherReply("m2", "m2")).toBe(false);
    expect(isOtherReply("m2", "m3")).toBe(true);
    // Nothing to compare with: the stream is taken as the reply shown.
    expect(isOtherReply(null, "m3")).toBe(false);
    expect(isOtherReply("m2", "")).toBe(false);
  });
});

describe("merging a replay into the message shown", () => {
  it("keeps the stored text shown until the replay has caught up, then grows it", () => {
    let s = reduce(opened, { type: "attach" });
    expect(s.status).toBe("streaming");
    expect(s.messages.at(-1)).toMatchObject({ status: "streaming", content: "One, two" });

    s = reduce(s, start, token("One"), token(","));
    // The replay ("One,") is behind what was stored: the text does not shrink.
    expect(s.messages.at(-1)).toMatchObject({ content: "One, two", serverId: "m2", model: "qwen" });

    s = reduce(s, token(" two"), token(", three"));
    expect(s.messages.at(-1)?.content).toBe("One, two, three");
    s = reduce(s, token(", four"));
    expect(s.messages.at(-1)?.content).toBe("One, two, three, four");
    expect(s.messages.at(-1)?.replay).toBeUndefined();

    s = reduce(s, {
      type: "event",
      event: { type: "end", message_id: "m2", finish_reason: "stop", usage: { completion_tokens: 7 } },
    });
    expect(s.status).toBe("idle");
    expect(s.messages.at(-1)).toMatchObject({ status: "complete", content: "One, two, three, four", completionTokens: 7 });
    expect(s.messages).toHaveLength(2);
  });

  it("ends with the replayed text, not the stored one, when the reply ends before catching up", () => {
    // Stored text a save ahead of where the replay ended (not expected, but the server's text wins).
    const s = reduce(opened, { type: "attach" }, start, token("One"), {
      type: "event",
      event: { type: "end", message_id: "m2", finish_reason: "cancelled" },
    });
    expect(s.messages.at(-1)).toMatchObject({ status: "cancelled", content: "One" });
  });

  it("appends replayed tokens as a pure step", () => {
    expect(appendReplayed({ content: "abc", replay: "" }, "a")).toEqual({ content: "abc", replay: "a" });
    expect(appendReplayed({ content: "abc", replay: "ab" }, "cd")).toEqual({ content: "abcd", replay: undefined });
    expect(appendReplayed({ content: "abc", replay: undefined }, "d")).toEqual({ content: "abcd", replay: undefined });
  });

  it("shows a stop that arrives through the stream as a stopped reply", () => {
    const s = reduce(opened, { type: "attach" }, start, token("One, two, three"), {
      type: "event",
      event: { type: "end", message_id: "m2", finish_reason: "cancelled", usage: { completion_tokens: 5 } },
    });
    expect(s.messages.at(-1)).toMatchObject({ status: "cancelled", finishReason: "cancelled", content: "One, two, three" });
  });

  it("attaches only to a generating reply", () => {
    const done = reduce(initialChatState, { type: "load", messages: [user("u1", "Hi"), ai("m1", "Hello")] });
    expect(reduce(done, { type: "attach" })).toBe(done);
  });

  it("leaves the reply generating, with its text, when this tab stops following it", () => {
    const s = reduce(opened, { type: "attach" }, start, token("One"), { type: "detach" });
    expect(s.status).toBe("idle");
    expect(s.messages.at(-1)).toMatchObject({ status: "generating", content: "One, two" });
    expect(s.messages.at(-1)?.replay).toBeUndefined();
  });

  it("drops, on leaving, a reply the server never started", () => {
    const s = reduce(initialChatState, { type: "submit", history: [user("u1", "Hi")], assistantId: "ai-1" }, { type: "detach" });
    expect(s.status).toBe("idle");
    expect(s.messages).toEqual([user("u1", "Hi")]);
  });
});

describe("the chat request", () => {
  it("is always resumable, with the chat options", () => {
    const settings = resolveSettings(
      { model: null, prompt: "Be brief.", temperature: 0.2, top_p: null, max_tokens: 900 },
      null,
    );
    const body = chatRequest("c1", [user("u1", "Hi")], settings);
    expect(body).toMatchObject({
      id: "c1",
      messages: [{ role: "user", content: "Hi" }],
      data: { resumable: true, prompt: "Be brief.", temperature: 0.2, max_tokens: 900 },
    });
  });
});

const summary = (id: string, extra: Partial<ConversationSummary> = {}): ConversationSummary => ({
  id,
  title: id,
  created_at: "2026-11-27T10:00:00Z",
  updated_at: "2026-11-27T10:00:00Z",
  generating: false,
  ...extra,
});

describe("the conversation list while replies generate", () => {
  it("knows whether any reply generates", () => {
    expect(anyGenerating([summary("a"), summary("b", { generating: true })])).toBe(true);
    expect(anyGenerating([summary("a")])).toBe(false);
  });

  it("takes the fresh first page's values, adds new conversations on top, and keeps later pages", () => {
    const shown = [summary("a", { generating: true }), summary("b"), summary("c")];
    const fresh = [summary("n"), summary("a", { generating: false, title: "Counting" })];
    expect(mergeSummaries(shown, fresh)).toEqual([
      summary("n"),
      summary("a", { generating: false, title: "Counting" }),
      summary("b"),
      summary("c"),
    ]);
  });
});
