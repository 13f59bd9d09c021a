/** The numbers shown under a reply: speed, time to first token and length. */
import type { ChatMessage } from "./chat-state";

export type ReplyStats = Pick<ChatMessage, "tokensPerSecond" | "ttftMs" | "completionTokens">;

/**
 * "31.2 tok/s · TTFT 180 ms · 42 tokens". A rate needs two tokens (it is measured between the
 * first and the last), so it is left out for shorter replies and when it is zero.
 */
export function formatStats(stats: ReplyStats): string[] {
  const parts: string[] = [];
  const tokens = stats.completionTokens;
  const rate = stats.tokensPerSecond;
  if (typeof rate === "number" && rate > 0 && (typeof tokens !== "number" || tokens >= 2)) {
    parts.push(`${rate.toFixed(1)} tok/s`);
  }
  if (typeof stats.ttftMs === "number") {
    parts.push(stats.ttftMs >= 1000 ? `TTFT ${(stats.ttftMs / 1000).toFixed(2)} s` : `TTFT ${Math.round(stats.ttftMs)} ms`);
  }
  if (typeof tokens === "number") parts.push(tokens === 1 ? "1 token" : `${tokens} tokens`);
  return parts;
}

/** Whether a reply has none of the numbers (a reply stopped on this side has none yet). */
export function hasNoStats(stats: ReplyStats): boolean {
  return stats.tokensPerSecond == null && stats.ttftMs == null && stats.completionTokens == null;
}
