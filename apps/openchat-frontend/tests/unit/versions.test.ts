import { describe, expect, it } from "vitest";

import { chatReducer, historyForEdit, initialChatState, type ChatMessage } from "@/lib/chat-state";
import { neighbourVersion, versionCount, versionLabel, withVersions } from "@/lib/versions";

const msg = (id: string, role: ChatMessage["role"], content: string, extra: Partial<ChatMessage> = {}): ChatMessage => ({
  id,
  role,
  content,
  status: "complete",
  ...extra,
});

describe("the version control", () => {
  const second = { siblingIds: ["a", "b", "c"], siblingIndex: 1 };

  it("labels the version shown, 1-based, of how many", () => {
    expect(versionLabel(second)).toBe("2 / 3");
    expect(versionLabel({ siblingIds: ["a", "b"], siblingIndex: 0 })).toBe("1 / 2");
    expect(versionCount(second)).toBe(3);
  });

  it("shows nothing for a message with one version or none known", () => {
    expect(versionLabel({ siblingIds: ["a"], siblingIndex: 0 })).toBeNull();
    expect(versionLabel({})).toBeNull();
    expect(versionLabel({ siblingIds: null, siblingIndex: null })).toBeNull();
    expect(versionCount({})).toBe(1);
  });

  it("flips to the previous and next version, and stops at either end", () => {
    expect(neighbourVersion(second, -1)).toBe("a");
    expect(neighbourVersion(second, 1)).toBe("c");
    expect(neighbourVersion({ siblingIds: ["a", "b", "c"], siblingIndex: 0 }, -1)).toBeNull();
    expect(neighbourVersion({ siblingIds: ["a", "b", "c"], siblingIndex: 2 }, 1)).toBeNull();
    expect(neighbourVersion({}, 1)).toBeNull();
  });
});

describe("withVersions", () => {
  const stored = [
    msg("s-u1", "user", "Hi", { serverId: "s-u1", position: 0, siblingIds: ["s-u1"], siblingIndex: 0 }),
    msg("s-a2", "ai", "Hello again", { serverId: "s-a2", position: 1, siblingIds: ["s-a1", "s-a2"], siblingIndex: 1 }),
  ];

  it("gives a regenerated reply its versions and keeps the ids shown", () => {
    const shown = [
      msg("s-u1", "user", "Hi", { serverId: "s-u1", position: 0 }),
      msg("ai-local", "ai", "Hello again", { serverId: "s-a2", ttftMs: 120 }),
    ];
    const merged = withVersions(shown, stored);
    expect(merged.map((m) => m.id)).toEqual(["s-u1", "ai-local"]);
    expect(merged[1]).toMatchObject({ siblingIds: ["s-a1", "s-a2"], siblingIndex: 1, position: 1, ttftMs: 120 });
    expect(versionLabel(merged[1]!)).toBe("2 / 2");
  });

  it("matches by depth from the first message shown (a conversation opened on its latest page)", () => {
    const page = [
      msg("s-u5", "user", "Later", { serverId: "s-u5", position: 4 }),
      msg("ai-local", "ai", "Answer", {}),
    ];
    const later = [
      msg("s-u5", "user", "Later", { serverId: "s-u5", position: 4, siblingIds: ["s-u5"], siblingIndex: 0 }),
      msg("s-a6", "ai", "Answer", { serverId: "s-a6", position: 5, siblingIds: ["x", "s-a6"], siblingIndex: 1 }),
    ];
    expect(withVersions(page, later)[1]).toMatchObject({ serverId: "s-a6", siblingIndex: 1 });
  });

  it("leaves alone messages that are not the stored one at their depth", () => {
    const shown = [
      msg("s-u1", "user", "Hi", { serverId: "s-u1", position: 0 }),
      msg("ai-local", "ai", "A reply still streaming", { status: "streaming" }),
    ];
    const merged = withVersions(shown, stored);
    expect(merged[1]).toBe(shown[1]);
    expect(merged[0]).toMatchObject({ siblingIds: ["s-u1"] });
  });

  it("returns the same array when nothing changes", () => {
    const shown = stored.map((m) => ({ ...m }));
    expect(withVersions(shown, stored)).toBe(shown);
  });

  it("is what the reducer's `versions` action does", () => {
    const state = chatReducer(initialChatState, {
      type: "load",
      messages: [msg("s-u1", "user", "Hi", { position: 0 }), msg("s-a2", "ai", "Hello again", { position: 1 })],
    });
    const next = chatReducer(state, { type: "versions", stored });
    expect(next.messages[1]?.siblingIndex).toBe(1);
    expect(chatReducer(next, { type: "versions", stored })).toBe(next);
  });
});

describe("editing a message with versions", () => {
  it("sends the edit as a new version: it does not carry the old one's versions", () => {
    const shown = [msg("s-u1", "user", "Hi", { serverId: "s-u1", position: 0, siblingIds: ["s-u0", "s-u1"], siblingIndex: 1 })];
    const history = historyForEdit(shown, "s-u1", "Hi there");
    expect(history?.[0]).toMatchObject({ content: "Hi there", siblingIds: null, siblingIndex: null });
  });
});
