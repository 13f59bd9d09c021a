/**
 * API client for the Next.js proxy at /api/v1. The access token lives only in this
 * module (memory), never in storage. A 401 triggers one silent refresh through the
 * httpOnly refresh cookie; if that fails, `onUnauthorized` (set by the auth provider)
 * sends the user to the login page.
 */
import type { ApiMessage } from "./chat-state";

export const API_BASE = "/api/v1";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export type TokenResponse = { access_token: string; token_type: string; expires_in: number };
export type User = { id: string; email: string; created_at?: string };

let accessToken: string | null = null;
let refreshTimer: ReturnType<typeof setTimeout> | null = null;
let refreshing: Promise<boolean> | null = null;
let unauthorizedHandler: (() => void) | null = null;

export function setOnUnauthorized(handler: (() => void) | null): void {
  unauthorizedHandler = handler;
}

export function setAccessToken(token: string | null, expiresIn?: number): void {
  accessToken = token;
  if (refreshTimer) clearTimeout(refreshTimer);
  refreshTimer = null;
  if (token && expiresIn && typeof window !== "undefined") {
    // Refresh a minute before expiry (or at 80% of a short lifetime).
    const lead = Math.min(60, expiresIn * 0.2);
    const delayMs = Math.max(5, expiresIn - lead) * 1000;
    refreshTimer = setTimeout(() => {
      void refreshAccessToken();
    }, delayMs);
  }
}

/** Exchanges the refresh cookie for a new access token. Concurrent calls share one request. */
export function refreshAccessToken(): Promise<boolean> {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const res = await fetch(`${API_BASE}/auth/refresh`, { method: "POST", credentials: "same-origin" });
        if (!res.ok) {
          setAccessToken(null);
          return false;
        }
        const body = (await res.json()) as TokenResponse;
        setAccessToken(body.access_token, body.expires_in);
        return true;
      } catch {
        return false;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

function withAuth(init: RequestInit = {}): RequestInit {
  const headers = new Headers(init.headers);
  if (accessToken) headers.set("Authorization", `Bearer ${accessToken}`);
  if (init.body && typeof init.body === "string" && !headers.has("Content-Type")) {
    headers.set("Content-Type", "application/json");
  }
  return { ...init, headers, credentials: "same-origin" };
}

/**
 * fetch() against the API with the bearer token; on 401 refreshes once and retries.
 * Returns the Response as is (the caller checks `ok`).
 */
async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(`${API_BASE}${path}`, withAuth(init));
  if (res.status !== 401 || path.startsWith("/auth/")) return res;
  const refreshed = await refreshAccessToken();
  if (!refreshed) {
    unauthorizedHandler?.();
    return res;
  }
  const retry = await fetch(`${API_BASE}${path}`, withAuth(init));
  if (retry.status === 401) unauthorizedHandler?.();
  return retry;
}

/** Builds an ApiError from a failed response (`{"detail","code"}` bodies). */
export async function errorFrom(res: Response): Promise<ApiError> {
  let detail = "";
  let code: string | undefined;
  try {
    const body = (await res.json()) as { detail?: unknown; code?: unknown };
    if (typeof body.detail === "string") detail = body.detail;
    else if (Array.isArray(body.detail)) detail = "The request was not valid.";
    if (typeof body.code === "string") code = body.code;
  } catch {
    // not JSON
  }
  const retryAfterHeader = res.headers.get("Retry-After");
  const retryAfter = retryAfterHeader ? Number.parseInt(retryAfterHeader, 10) : undefined;
  if (!detail) detail = defaultMessage(res.status);
  return new ApiError(detail, res.status, code, Number.isFinite(retryAfter) ? retryAfter : undefined);
}

function defaultMessage(status: number): string {
  switch (status) {
    case 401:
      return "Your session has expired. Please sign in again.";
    case 404:
      return "Not found.";
    case 413:
      return "The conversation is too large to send.";
    case 429:
      return "The model is busy. Please try again shortly.";
    case 502:
    case 503:
    case 504:
      return "The OpenChat server is not reachable.";
    default:
      return status >= 500 ? "The server failed to answer. Please try again." : `Request failed (${status}).`;
  }
}

async function apiJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await apiFetch(path, init);
  if (!res.ok) throw await errorFrom(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** GET without the bearer token and without the refresh-on-401 (probes of the auth set-up). */
async function publicJson<T>(path: string): Promise<T> {
  const res = await fetch(`${API_BASE}${path}`, { credentials: "same-origin" });
  if (!res.ok) throw await errorFrom(res);
  return (await res.json()) as T;
}

// --- typed endpoints ---------------------------------------------------------------------

export type ModelInfo = {
  id: string;
  name: string;
  provider: "local" | "together" | "openai-compatible" | string;
  context_length: number | null;
  default: boolean;
};

export type ConversationSummary = { id: string; title: string | null; created_at: string; updated_at: string };

export type ServerSettings = {
  model?: string | null;
  prompt?: string | null;
  temperature?: number | null;
  top_p?: number | null;
  max_tokens?: number | null;
};

export type ConversationDetail = ConversationSummary & {
  settings?: ServerSettings | null;
  messages: ApiMessage[];
};

export const api = {
  models: () => apiJson<{ models: ModelInfo[] }>("/models"),
  conversations: (params: { q?: string; limit?: number; cursor?: string | null }) => {
    const search = new URLSearchParams();
    if (params.q) search.set("q", params.q);
    if (params.limit) search.set("limit", String(params.limit));
    if (params.cursor) search.set("cursor", params.cursor);
    const qs = search.toString();
    return apiJson<{ conversations: ConversationSummary[]; next_cursor: string | null }>(
      `/conversations${qs ? `?${qs}` : ""}`,
    );
  },
  conversation: (id: string) => apiJson<ConversationDetail>(`/conversations/${encodeURIComponent(id)}`),
  rename: (id: string, title: string) =>
    apiJson<ConversationSummary>(`/conversations/${encodeURIComponent(id)}`, {
      method: "PATCH",
      body: JSON.stringify({ title }),
    }),
  remove: (id: string) => apiJson<void>(`/conversations/${encodeURIComponent(id)}`, { method: "DELETE" }),
  me: () => apiJson<User>("/auth/me"),
  /** /auth/me without a token: answers only when the server runs without login. */
  meWithoutToken: () => publicJson<User>("/auth/me"),
  authStatus: () => publicJson<{ mode: string; has_users: boolean }>("/auth/status"),
  login: (email: string, password: string) =>
    apiJson<TokenResponse>("/auth/login", { method: "POST", body: JSON.stringify({ email, password }) }),
  signup: (email: string, password: string) =>
    apiJson<TokenResponse>("/auth/signup", { method: "POST", body: JSON.stringify({ email, password }) }),
  logout: () => apiFetch("/auth/logout", { method: "POST" }),
  chat: (body: unknown, signal: AbortSignal) =>
    apiFetch("/chat", {
      method: "POST",
      body: JSON.stringify(body),
      headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
      signal,
    }),
};
