"use client";

import * as React from "react";

import { api, ApiError } from "@/lib/api";
import { fromApiMessage, type ChatMessage } from "@/lib/chat-state";
import { hasNoStats, type ReplyStats } from "@/lib/reply-stats";

const ATTEMPTS = 20;
const INTERVAL_MS = 500;

/** A reply stopped here before its `end` line: it has a server id but no numbers yet. */
function stoppedWithoutStats(m: ChatMessage): boolean {
  return m.role === "ai" && m.status === "cancelled" && !!m.serverId && hasNoStats(m);
}

/**
 * Stats of the replies stopped in this view, by server message id. Stop closes the stream, so
 * the `end` line with the numbers never arrives; the server counts and stores them once it
 * notices, a moment later. They are read back from the stored conversation, so the reply shows
 * the same numbers now as after a reload.
 */
export function useStoppedReplyStats(conversationId: string | null, messages: ChatMessage[]) {
  const [stats, setStats] = React.useState<Record<string, ReplyStats>>({});
  const pending = messages
    .filter((m) => stoppedWithoutStats(m) && !(m.serverId! in stats))
    .map((m) => m.serverId!)
    .join(" ");

  React.useEffect(() => {
    if (!conversationId || !pending) return;
    const ids = new Set(pending.split(" "));
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const attempt = async (n: number) => {
      let found: Record<string, ReplyStats> = {};
      try {
        // Replies stopped in this session are among the latest messages: no need for all of them.
        const detail = await api.conversation(conversationId, { limit: 20 });
        const stored = detail.messages.filter((m) => ids.has(m.id) && m.status === "cancelled").map(fromApiMessage);
        found = Object.fromEntries(
          stored.map((m) => [m.id, { tokensPerSecond: m.tokensPerSecond, ttftMs: m.ttftMs, completionTokens: m.completionTokens }]),
        );
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return; // deleted meanwhile
      }
      if (cancelled) return;
      if (Object.keys(found).length > 0) setStats((s) => ({ ...s, ...found }));
      else if (n < ATTEMPTS) timer = setTimeout(() => void attempt(n + 1), INTERVAL_MS);
    };
    void attempt(1);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [conversationId, pending]);

  return stats;
}
