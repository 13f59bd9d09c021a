/**
 * Whether the OpenChat server can be reached (through the Next.js proxy), for the whole app.
 *
 * Every API call reports whether it got an answer (lib/api.ts): no answer, or a gateway error
 * from the proxy, makes the state `offline`. While offline the server is polled
 * (GET /api/v1/auth/status) with backoff until it answers; then — or as soon as any other call
 * gets an answer — the state is `reconnected` for a few seconds, then `online` again.
 * Parts of the app that failed while offline reload on `onReconnect`.
 */
import { api, setOnReachability } from "@/lib/api";

export type Connection = "online" | "offline" | "reconnected";

/** Waits between polls while offline: 2 s, 3 s, then every 5 s. */
export const POLL_DELAYS_MS = [2000, 3000, 5000] as const;
/** How long "reconnected" shows before the state is plain `online` again. */
export const RECONNECTED_MS = 4000;

let state: Connection = "online";
let polls = 0;
let pollTimer: ReturnType<typeof setTimeout> | null = null;
let settleTimer: ReturnType<typeof setTimeout> | null = null;
const listeners = new Set<() => void>();
const reconnectListeners = new Set<() => void>();

function setState(next: Connection) {
  if (state === next) return;
  state = next;
  for (const listener of [...listeners]) listener();
  if (next === "reconnected") for (const listener of [...reconnectListeners]) listener();
}

function clearPoll() {
  if (pollTimer) clearTimeout(pollTimer);
  pollTimer = null;
}

function schedulePoll() {
  clearPoll();
  const delay = POLL_DELAYS_MS[Math.min(polls, POLL_DELAYS_MS.length - 1)];
  polls += 1;
  pollTimer = setTimeout(() => {
    pollTimer = null;
    void checkConnection();
  }, delay);
}

function markUnreachable() {
  if (state === "offline") return;
  if (settleTimer) clearTimeout(settleTimer);
  settleTimer = null;
  polls = 0;
  setState("offline");
  schedulePoll();
}

function markReachable() {
  if (state !== "offline") return;
  clearPoll();
  setState("reconnected");
  settleTimer = setTimeout(() => {
    settleTimer = null;
    setState("online");
  }, RECONNECTED_MS);
}

setOnReachability((reachable) => (reachable ? markReachable() : markUnreachable()));

export function getConnection(): Connection {
  return state;
}

export function subscribeConnection(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Calls `listener` each time the server answers again after being unreachable. */
export function onReconnect(listener: () => void): () => void {
  reconnectListeners.add(listener);
  return () => reconnectListeners.delete(listener);
}

/**
 * Asks the server now (a "Try now" button, or a stream that broke off); resolves to whether
 * it answered. The answer itself moves the state (through the API's report).
 */
export async function checkConnection(): Promise<boolean> {
  clearPoll();
  const reachable = await api.serverReachable();
  if (state === "offline" && pollTimer === null) schedulePoll();
  return reachable;
}
