import { describe, expect, it } from "vitest";

import {
  canRegenerate,
  chatReducer,
  fromApiMessage,
  historyForEdit,
  historyForRegenerate,
  historyForSend,
  initialChatState,
  needsChange,
  toApiMessages,
  type ChatAction,
  type ChatMessage,
  type ChatState,
} from "@/lib/chat-state";

const user = (id: string, content: string): ChatMessage => ({ id, role: "user", content, status: "complete" });
const ai = (id: string, content: string, extra: Partial<ChatMessage> = {}): ChatMessage => ({
  id,
  role: "ai",
  content,
  status: "complete",
  ...extra,
});

function reduce(state: ChatState, ...actions: ChatAction[]): ChatState {
  return actions.reduce(chatReducer, state);
}

function streamed(state: ChatState, history: ChatMessage[], tokens: string[]): ChatState {
  return reduce(
    state,
    { type: "submit", history, assistantId: "ai-1" },
    { type: "event", event: { type: "start", id: "c", message_id: "m1", model: "qwen" } },
    ...tokens.map((content): ChatAction => ({ type: "event", event: { type: "token", content } })),
  );
}

describe("streaming", () => {
  it("adds a pending reply on submit, then grows it token by token", () => {
    let s = chatReducer(initialChatState, { type: "submit", history: [user("u1", "Hi")], assistantId: "ai-1" });
    expect(s.status).toBe("submitting");
    expect(s.messages.at(-1)).toMatchObject({ role: "ai", status: "pending", content: "" });

    s = streamed(initialChatState, [user("u1", "Hi")], ["Hel", "lo", "!"]);
    expect(s.status).toBe("streaming");
    expect(s.messages.at(-1)).toMatchObject({ content: "Hello!", status: "streaming", model: "qwen", serverId: "m1" });

    s = chatReducer(s, {
      type: "event",
      event: {
        type: "end",
        message_id: "m1",
        finish_reason: "stop",
        usage: { prompt_tokens: 5, completion_tokens: 3 },
        timings: { ttft_ms: 120, tokens_per_second: 28.5 },
      },
    });
    expect(s.status).toBe("idle");
    expect(s.messages.at(-1)).toMatchObject({
      status: "complete",
      finishReason: "stop",
      completionTokens: 3,
      ttftMs: 120,
      tokensPerSecond: 28.5,
    });
  });

  it("shows a long prompt's progress on the reply until its first token", () => {
    let s = reduce(
      initialChatState,
      { type: "submit", history: [user("u1", "A long document")], assistantId: "ai-1" },
      { type: "event", event: { type: "start", id: "c", message_id: "m1", model: "qwen" } },
      { type: "event", event: { type: "progress", processed: 0, total: 3000 } },
      { type: "event", event: { type: "progress", processed: 1536, total: 3000 } },
    );
    expect(s.status).toBe("streaming");
    expect(s.messages.at(-1)).toMatchObject({ content: "", status: "streaming", promptProgress: { processed: 1536, total: 3000 } });
    s = chatReducer(s, { type: "event", event: { type: "token", content: "Summary" } });
    expect(s.messages.at(-1)).toMatchObject({ content: "Summary", status: "streaming" });
  });

  it("records the title, and on the reply how many messages its prompt left out", () => {
    let s = streamed(initialChatState, [user("u1", "Hi")], ["a"]);
    s = reduce(
      s,
      { type: "event", event: { type: "title", title: "Greeting" } },
      { type: "event", event: { type: "trimmed", omitted_messages: 4 } },
    );
    expect(s.title).toBe("Greeting");
    expect(s.messages.at(-1)).toMatchObject({ role: "ai", omittedMessages: 4 });
    expect(s.messages[0]?.omittedMessages).toBeUndefined();
  });

  it("keeps partial text and shows the message of an error event", () => {
    let s = streamed(initialChatState, [user("u1", "Hi")], ["partial"]);
    s = chatReducer(s, { type: "event", event: { type: "error", code: "model_failed", message: "Model crashed" } });
    expect(s.status).toBe("idle");
    expect(s.error).toEqual({ message: "Model crashed", code: "model_failed" });
    expect(s.messages.at(-1)).toMatchObject({ content: "partial", status: "error" });
    expect(s.messages[0]).toMatchObject({ role: "user", content: "Hi" });
  });

  it("clears an error the user answered by changing a setting", () => {
    let s = chatReducer(initialChatState, { type: "submit", history: [user("u1", "Long")], assistantId: "ai-1" });
    s = chatReducer(s, { type: "fail", error: { message: "Too long", code: "message_too_long", needsChange: true } });
    s = chatReducer(s, { type: "clearError" });
    expect(s.error).toBeNull();
    expect(s.messages).toEqual([user("u1", "Long")]);
  });

  it("tells refused requests (change something) from failures worth retrying", () => {
    expect([400, 404, 413, 422].map(needsChange)).toEqual([true, true, true, true]);
    expect([408, 429, 500, 502, 503].map(needsChange)).toEqual([false, false, false, false, false]);
  });

  it("keeps the user's message when the request fails before streaming", () => {
    let s = chatReducer(initialChatState, { type: "submit", history: [user("u1", "Keep me")], assistantId: "ai-1" });
    s = chatReducer(s, { type: "fail", error: { message: "Server down" } });
    expect(s.messages).toEqual([user("u1", "Keep me")]);
    expect(s.error?.message).toBe("Server down");
    expect(canRegenerate(s)).toBe(true);
  });

  it("waits on 429 and clears the wait on stop", () => {
    let s = chatReducer(initialChatState, { type: "submit", history: [user("u1", "Hi")], assistantId: "ai-1" });
    s = chatReducer(s, { type: "busy", retryAt: 123 });
    expect(s.status).toBe("waiting");
    expect(s.retryAt).toBe(123);
    expect(s.messages).toHaveLength(1);
    s = chatReducer(s, { type: "stop" });
    expect(s.status).toBe("idle");
    expect(s.retryAt).toBeNull();
  });

  it("flags a stream that closes without an end line", () => {
    let s = streamed(initialChatState, [user("u1", "Hi")], ["half"]);
    s = chatReducer(s, { type: "streamClosed" });
    expect(s.status).toBe("idle");
    expect(s.error?.code).toBe("stream_closed");
    expect(s.messages.at(-1)?.content).toBe("half");
  });

  it("ignores events when no reply is open", () => {
    const s = chatReducer(initialChatState, { type: "event", event: { type: "token", content: "x" } });
    expect(s.messages).toEqual([]);
  });
});

describe("stop", () => {
  it("marks a partial reply as cancelled", () => {
    let s = streamed(initialChatState, [user("u1", "Hi")], ["Once upon"]);
    s = chatReducer(s, { type: "stop" });
    expect(s.status).toBe("idle");
    expect(s.messages.at(-1)).toMatchObject({ content: "Once upon", status: "cancelled", finishReason: "cancelled" });
  });

  it("drops an empty reply", () => {
    let s = chatReducer(initialChatState, { type: "submit", history: [user("u1", "Hi")], assistantId: "ai-1" });
    s = chatReducer(s, { type: "stop" });
    expect(s.messages).toEqual([user("u1", "Hi")]);
  });

  it("keeps a late end event from reopening anything", () => {
    let s = streamed(initialChatState, [user("u1", "Hi")], ["a"]);
    s = chatReducer(s, { type: "stop" });
    const after = chatReducer(s, { type: "event", event: { type: "token", content: "late" } });
    expect(after.messages.at(-1)?.content).toBe("a");
  });
});

describe("history building", () => {
  const conversation = [user("u1", "First"), ai("a1", "Reply 1"), user("u2", "Second"), ai("a2", "Reply 2")];

  it("send appends the user message to the whole conversation", () => {
    const h = historyForSend(conversation, user("u3", "Third"));
    expect(toApiMessages(h)).toEqual([
      { role: "user", content: "First" },
      { role: "ai", content: "Reply 1" },
      { role: "user", content: "Second" },
      { role: "ai", content: "Reply 2" },
      { role: "user", content: "Third" },
    ]);
  });

  it("send leaves out failed or empty replies", () => {
    const h = historyForSend([user("u1", "First"), ai("a1", "oops", { status: "error" })], user("u2", "Again"));
    expect(h.map((m) => m.id)).toEqual(["u1", "u2"]);
  });

  it("send leaves out a reply cut short by a server stop, or still being written", () => {
    for (const status of ["interrupted", "generating"] as const) {
      const cut = [user("u1", "First"), ai("a1", "Once upon", { status })];
      expect(historyForSend(cut, user("u2", "Again")).map((m) => m.id)).toEqual(["u1", "u2"]);
    }
  });

  it("keeps an interrupted reply loaded from the server with its text and status", () => {
    const loaded = fromApiMessage({
      id: "a1",
      position: 1,
      role: "ai",
      content: "Once upon",
      status: "interrupted",
      model: "m",
      finish_reason: null,
      prompt_tokens: null,
      completion_tokens: null,
      ttft_ms: null,
      tokens_per_second: null,
      omitted_messages: null,
      created_at: "2026-01-01T00:00:00Z",
      parent_id: "u1",
      sibling_ids: ["a1"],
      sibling_index: 0,
      sibling_count: 1,
    });
    expect(loaded).toMatchObject({ content: "Once upon", status: "interrupted", finishReason: null });
  });

  it("regenerate sends history up to the last user message", () => {
    expect(historyForRegenerate(conversation)?.map((m) => m.id)).toEqual(["u1", "a1", "u2"]);
    expect(historyForRegenerate([ai("a0", "hello")])).toBeNull();
  });

  it("regenerate after a reducer round trip replaces the last reply", () => {
    const loaded = chatReducer(initialChatState, { type: "load", messages: conversation });
    const history = historyForRegenerate(loaded.messages);
    expect(history).not.toBeNull();
    const s = streamed(loaded, history ?? [], ["New reply"]);
    expect(s.messages.map((m) => m.content)).toEqual(["First", "Reply 1", "Second", "New reply"]);
  });

  it("edit keeps what came before and replaces the edited message and the tail", () => {
    const h = historyForEdit(conversation, "u1", "First, edited");
    expect(toApiMessages(h ?? [])).toEqual([{ role: "user", content: "First, edited" }]);
    const h2 = historyForEdit(conversation, "u2", "Second, edited");
    expect(h2?.map((m) => m.content)).toEqual(["First", "Reply 1", "Second, edited"]);
  });

  it("edit refuses unknown ids and non-user messages", () => {
    expect(historyForEdit(conversation, "nope", "x")).toBeNull();
    expect(historyForEdit(conversation, "a1", "x")).toBeNull();
  });
});

describe("fromApiMessage", () => {
  it("maps the server's fields", () => {
    expect(
      fromApiMessage({
        id: "m1",
        position: 7,
        role: "ai",
        content: "Hi",
        status: "cancelled",
        model: "qwen",
        finish_reason: "cancelled",
        prompt_tokens: 3,
        completion_tokens: 1,
        ttft_ms: 40,
        tokens_per_second: 20,
        omitted_messages: 3,
        created_at: "2026-01-01T00:00:00Z",
        parent_id: "m0",
        sibling_ids: ["m1-old", "m1"],
        sibling_index: 1,
        sibling_count: 2,
      }),
    ).toMatchObject({
      id: "m1",
      position: 7,
      role: "ai",
      status: "cancelled",
      model: "qwen",
      ttftMs: 40,
      tokensPerSecond: 20,
      omittedMessages: 3,
      siblingIds: ["m1-old", "m1"],
      siblingIndex: 1,
    });
  });
});

describe("earlier messages", () => {
  const page = (from: number, to: number): ChatMessage[] =>
    Array.from({ length: to - from }, (_, i) => ({
      id: `m${from + i}`,
      position: from + i,
      role: (from + i) % 2 === 0 ? "user" : "ai",
      content: `message ${from + i}`,
      status: "complete",
    }));

  it("a conversation opened on its latest page knows earlier messages remain", () => {
    const state = chatReducer(initialChatState, { type: "load", messages: page(100, 200), hasEarlier: true });
    expect(state.hasEarlier).toBe(true);
    expect(chatReducer(state, { type: "reset" }).hasEarlier).toBe(false);
  });

  it("earlier pages go above the loaded messages, in order", () => {
    let state = chatReducer(initialChatState, { type: "load", messages: page(100, 200), hasEarlier: true });
    state = chatReducer(state, { type: "prepend", messages: page(0, 100), hasEarlier: false });
    expect(state.messages.map((m) => m.position)).toEqual([...Array(200).keys()]);
    expect(state.hasEarlier).toBe(false);
  });

  it("overlapping loads add each earlier message once", () => {
    let state = chatReducer(initialChatState, { type: "load", messages: page(200, 300), hasEarlier: true });
    // Sending loaded all the rest while the page before was still loading; the page arrives last.
    state = chatReducer(state, { type: "prepend", messages: page(0, 200), hasEarlier: false });
    state = chatReducer(state, { type: "prepend", messages: page(100, 200), hasEarlier: true });
    expect(state.messages.map((m) => m.position)).toEqual([...Array(300).keys()]);
    expect(state.hasEarlier).toBe(false);
  });
});
