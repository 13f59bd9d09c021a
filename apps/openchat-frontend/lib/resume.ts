/**
 * Resumable replies (issue 11): a reply keeps generating on the server when this tab goes away,
 * and any tab re-attaches to it with GET /conversations/{id}/stream (its events replayed from the
 * first, then live). The pure decisions live here; `hooks/use-chat.ts` wires them to fetch.
 */
import type { ConversationSummary } from "./api-client";
import type { ChatMessage } from "./chat-state";

/** How often the conversation list is read again while a reply in it is generating. */
export const GENERATING_POLL_MS = 3000;

/** After a 204 (nothing generating), how often a conversation still stored `generating` is read again. */
export const MAX_REATTACH_ATTEMPTS = 3;

/**
 * How long to wait before asking again to follow a reply that is stored `generating` but cannot
 * be followed yet (GET /stream answered 204: it is still starting, reading a long prompt or
 * waiting for the model): 0.5 s, 1 s, then every 2 s, for about half a minute; null: give up.
 */
export function reattachDelayMs(attempt: number): number | null {
  return attempt < 16 ? Math.min(2000, 500 * 2 ** attempt) : null;
}

/** The last message is a reply the server is still writing: the opened conversation attaches to it. */
export function shouldAttach(messages: readonly ChatMessage[]): boolean {
  const last = messages[messages.length - 1];
  return !!last && last.role === "ai" && last.status === "generating";
}

/**
 * An attached reply shows its stored text (saved every few seconds) until the replay, which starts
 * from the first token, has caught up with it; from then on the replayed text is shown and grows.
 * `replay` is undefined once caught up (tokens are then appended to `content` as usual).
 */
export function appendReplayed(m: Pick<ChatMessage, "content" | "replay">, token: string): Pick<ChatMessage, "content" | "replay"> {
  if (m.replay === undefined) return { content: m.content + token, replay: undefined };
  const replay = m.replay + token;
  return replay.length >= m.content.length ? { content: replay, replay: undefined } : { content: m.content, replay };
}

/** The text of an attached reply once it ended: the replayed text when any arrived, else what was stored. */
export function replayedText(m: Pick<ChatMessage, "content" | "replay">): string {
  return m.replay ? m.replay : m.content;
}

/**
 * The stream attached to is another reply than the one shown (it ended between reading the
 * conversation and attaching, and a new one started): the conversation is read again instead.
 */
export function isOtherReply(shownId: string | null | undefined, streamedId: string): boolean {
  return !!shownId && !!streamedId && shownId !== streamedId;
}

export function anyGenerating(items: readonly ConversationSummary[]): boolean {
  return items.some((c) => c.generating);
}

/**
 * The list as shown, updated with a fresh first page (read again while replies generate): the
 * conversations in it take its values, new ones go on top, and the pages loaded beyond it stay.
 */
export function mergeSummaries(
  shown: readonly ConversationSummary[],
  fresh: readonly ConversationSummary[],
): ConversationSummary[] {
  const byId = new Map(fresh.map((c) => [c.id, c]));
  const known = new Set(shown.map((c) => c.id));
  const added = fresh.filter((c) => !known.has(c.id));
  return [...added, ...shown.map((c) => byId.get(c.id) ?? c)];
}
