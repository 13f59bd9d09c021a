/**
 * Versions of a message (branching): a regenerated reply or an edited question is stored next
 * to the one it replaced, and the conversation shows one path. Pure helpers for the
 * `‹ 2 / 3 ›` control under a message and for putting the stored versions on the messages shown.
 */
import type { ChatMessage } from "./chat-state";

type Versioned = Pick<ChatMessage, "siblingIds" | "siblingIndex">;

/** How many versions the message has (1 when it has none besides itself, or none are known). */
export function versionCount(message: Versioned): number {
  return message.siblingIds?.length ?? 1;
}

/** "2 / 3": the version shown, of how many; null when there is only one. */
export function versionLabel(message: Versioned): string | null {
  const count = versionCount(message);
  if (count < 2 || message.siblingIndex == null) return null;
  return `${message.siblingIndex + 1} / ${count}`;
}

/** The id of the version before (-1) or after (+1) the one shown; null at either end. */
export function neighbourVersion(message: Versioned, step: -1 | 1): string | null {
  const ids = message.siblingIds;
  if (!ids || message.siblingIndex == null) return null;
  return ids[message.siblingIndex + step] ?? null;
}

/**
 * The messages shown, each given the version info of the stored message at its depth when that
 * is the same message (same role and text): after a reply ends, the stored path (the page
 * `GET /conversations/{id}` answers) tells which messages now have other versions. The shown
 * messages keep their own ids (React keys) and the rest of what they know; those that do not
 * match (a reply still streaming, a path that changed meanwhile) are left as they are.
 */
export function withVersions(shown: ChatMessage[], stored: ChatMessage[]): ChatMessage[] {
  const byDepth = new Map<number, ChatMessage>();
  for (const m of stored) if (m.position != null) byDepth.set(m.position, m);
  // The first message shown is at depth 0 unless it came from a page loaded from the server.
  const first = shown[0]?.position ?? 0;
  let changed = false;
  const merged = shown.map((m, i) => {
    const s = byDepth.get(first + i);
    if (!s || s.role !== m.role || s.content !== m.content) return m;
    if (
      m.serverId === s.serverId &&
      m.position === s.position &&
      m.siblingIndex === s.siblingIndex &&
      sameIds(m.siblingIds, s.siblingIds)
    ) {
      return m;
    }
    changed = true;
    return { ...m, serverId: s.serverId, position: s.position, siblingIds: s.siblingIds, siblingIndex: s.siblingIndex };
  });
  return changed ? merged : shown;
}

function sameIds(a: string[] | null | undefined, b: string[] | null | undefined): boolean {
  if (!a || !b) return (a ?? null) === (b ?? null);
  return a.length === b.length && a.every((id, i) => id === b[i]);
}
