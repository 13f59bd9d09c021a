/**
 * The app's API calls: the generated client (`lib/api-client/`, from the backend's OpenAPI
 * schema) plus what the schema does not say — the bearer token, one silent refresh on a 401,
 * and readable errors. The access token lives only in this module (memory), never in storage.
 * A 401 triggers one silent refresh through the httpOnly refresh cookie; if that fails,
 * `onUnauthorized` (set by the auth provider) sends the user to the login page.
 */
import { client } from "./api-client/client.gen";
import * as sdk from "./api-client/sdk.gen";
import type { ChatRequest, ConversationSettings } from "./api-client/types.gen";
import type { ImportResult } from "./transfer";

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

let accessToken: string | null = null;
/** When the access token expires (epoch ms); 0 when not known. */
let accessTokenExpiresAt = 0;
let refreshTimer: ReturnType<typeof setTimeout> | null = null;
let refreshing: Promise<boolean> | null = null;
let unauthorizedHandler: (() => void) | null = null;
let reachabilityHandler: ((reachable: boolean) => void) | null = null;

export function setOnUnauthorized(handler: (() => void) | null): void {
  unauthorizedHandler = handler;
}

/** Told after every API call whether the server answered (lib/connection.ts listens). */
export function setOnReachability(handler: ((reachable: boolean) => void) | null): void {
  reachabilityHandler = handler;
}

export function setAccessToken(token: string | null, expiresIn?: number): void {
  accessToken = token;
  accessTokenExpiresAt = token && expiresIn ? Date.now() + expiresIn * 1000 : 0;
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

/** What the Next.js proxy (or any gateway) answers when the backend behind it does not. */
const GATEWAY_ERRORS = new Set([502, 504]);

/**
 * fetch() that reports whether the server answered: no answer at all (not an abort) or a
 * gateway error means unreachable; any other answer, reachable.
 */
const watchedFetch: typeof fetch = async (input, init) => {
  let res: Response;
  try {
    res = await fetch(input, init);
  } catch (error) {
    const aborted = init?.signal?.aborted || (input instanceof Request && input.signal.aborted);
    if (!aborted) reachabilityHandler?.(false);
    throw error;
  }
  reachabilityHandler?.(!GATEWAY_ERRORS.has(res.status));
  return res;
};

/** A token with less than this left is renewed before a request is sent with it. */
const EXPIRY_MARGIN_MS = 1000;

/** fetch() without the token or a retry: the auth endpoints' own calls. */
const plainFetch: typeof fetch = (input, init) => watchedFetch(input, init);

/** Exchanges the refresh cookie for a new access token. Concurrent calls share one request. */
export function refreshAccessToken(): Promise<boolean> {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const { data } = await sdk.refresh({ fetch: plainFetch });
        if (!data) {
          setAccessToken(null);
          return false;
        }
        setAccessToken(data.access_token, data.expires_in);
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

/**
 * The generated client's fetch: sends the bearer token; on a 401 (outside /auth/) refreshes
 * once and sends the request again.
 */
const authFetch: typeof fetch = async (input, init) => {
  const request = input instanceof Request && !init ? input : new Request(input, init);
  // Read once, to send again after a refresh; and sent as bytes, as a plain fetch() would: a
  // Request's own body would go out as a stream (no Content-Length, invisible to dev tools).
  const body = request.body ? await request.arrayBuffer() : undefined;
  const send = () => {
    const headers = new Headers(request.headers);
    if (accessToken) headers.set("Authorization", `Bearer ${accessToken}`);
    return watchedFetch(request.url, {
      method: request.method,
      headers,
      body,
      signal: request.signal,
      credentials: request.credentials,
    });
  };
  // A token about to expire is renewed first (the timer above may be late on a busy machine, or
  // the renewal slow): a request sent with it would be refused, then sent again.
  if (refreshing) await refreshing;
  else if (accessToken && accessTokenExpiresAt && Date.now() > accessTokenExpiresAt - EXPIRY_MARGIN_MS) {
    await refreshAccessToken();
  }
  const res = await send();
  if (res.status !== 401 || new URL(request.url).pathname.startsWith(`${API_BASE}/auth/`)) return res;
  if (!(await refreshAccessToken())) {
    unauthorizedHandler?.();
    return res;
  }
  const retry = await send();
  if (retry.status === 401) unauthorizedHandler?.();
  return retry;
};

client.setConfig({ baseUrl: "", credentials: "same-origin", fetch: authFetch });

/** Builds an ApiError from a failed response's status, headers and parsed body (`{"detail","code"}`). */
function apiError(status: number, headers: Headers, body: unknown): ApiError {
  let detail = "";
  let code: string | undefined;
  if (typeof body === "object" && body !== null) {
    const { detail: d, code: c } = body as { detail?: unknown; code?: unknown };
    if (typeof d === "string") detail = d;
    else if (Array.isArray(d)) detail = "The request was not valid.";
    if (typeof c === "string") code = c;
  }
  const retryAfterHeader = headers.get("Retry-After");
  const retryAfter = retryAfterHeader ? Number.parseInt(retryAfterHeader, 10) : undefined;
  if (!detail) detail = defaultMessage(status);
  return new ApiError(detail, status, code, Number.isFinite(retryAfter) ? retryAfter : undefined);
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

/**
 * The data of a generated call, or an ApiError for an HTTP error; a network failure (or an
 * abort) rejects with fetch's own error.
 */
async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response?: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response) throw error;
  if (!response.ok) throw apiError(response.status, response.headers, error);
  return data as T;
}

const conversation = (id: string) => ({ path: { conversation_id: id } });

type UploadAnswer = { status: number; headers: Headers; body: unknown };

/** Sends `file` once with XMLHttpRequest, which (unlike fetch) reports the upload's progress. */
function sendFile(url: string, file: Blob, progress: UploadProgress): Promise<UploadAnswer> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    if (accessToken) xhr.setRequestHeader("Authorization", `Bearer ${accessToken}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => progress.onUpload?.(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.upload.onload = () => progress.onSent?.();
    xhr.onload = () => {
      const headers = new Headers();
      for (const line of xhr.getAllResponseHeaders().trim().split(/[\r\n]+/)) {
        const at = line.indexOf(":");
        if (at > 0) headers.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
      }
      let body: unknown = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        // Not JSON (a proxy's error page): the status says what happened.
      }
      reachabilityHandler?.(!GATEWAY_ERRORS.has(xhr.status));
      resolve({ status: xhr.status, headers, body });
    };
    xhr.onerror = () => reject(new TypeError("The upload failed."));
    xhr.onabort = () => reject(new DOMException("The upload was cancelled.", "AbortError"));
    progress.signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}

export type UploadProgress = {
  /** Bytes of the file sent so far. */
  onUpload?: (loaded: number, total: number) => void;
  /** The whole file has been sent: the server is reading it. */
  onSent?: () => void;
  signal?: AbortSignal;
};

/** Uploads `file` to `url` with the token, and once more after a silent refresh on a 401. */
async function upload<T>(url: string, file: Blob, progress: UploadProgress): Promise<T> {
  let answer = await sendFile(url, file, progress);
  if (answer.status === 401) {
    if (!(await refreshAccessToken())) {
      unauthorizedHandler?.();
    } else {
      answer = await sendFile(url, file, progress);
      if (answer.status === 401) unauthorizedHandler?.();
    }
  }
  if (answer.status < 200 || answer.status >= 300) throw apiError(answer.status, answer.headers, answer.body);
  return answer.body as T;
}

export const api = {
  models: () => unwrap(sdk.listModels()),
  conversations: (params: { q?: string; limit?: number; cursor?: string | null }) =>
    unwrap(
      sdk.listConversations({
        query: { q: params.q || undefined, limit: params.limit || undefined, cursor: params.cursor || undefined },
      }),
    ),
  /** A conversation with all its messages, or a page: the latest `limit` (before position `before`). */
  conversation: (id: string, page: { before?: number; limit?: number } = {}) =>
    unwrap(sdk.getConversation({ ...conversation(id), query: page })),
  rename: (id: string, title: string) => unwrap(sdk.updateConversation({ ...conversation(id), body: { title } })),
  /** Changes the given chat options of a stored conversation (null clears one). */
  updateSettings: (id: string, settings: ConversationSettings) =>
    unwrap(sdk.updateConversation({ ...conversation(id), body: { settings } })),
  remove: (id: string) => unwrap(sdk.deleteConversation(conversation(id))),
  /** Shows the path through `messageId` (one of a message's versions): the conversation as GET gives it. */
  branch: (id: string, messageId: string, page: { limit?: number } = {}) =>
    unwrap(sdk.showBranch({ ...conversation(id), body: { message_id: messageId }, query: page })),
  // parseAs "blob": the file as it came, to save (the schema types the JSON export's content).
  /** One conversation as a file: OpenChat JSON (every version) or Markdown (the path shown). */
  exportConversation: async (id: string, format: "openchat" | "markdown"): Promise<Blob> =>
    (await unwrap(sdk.exportConversation({ ...conversation(id), query: { format }, parseAs: "blob" }))) as unknown as Blob,
  /** All of the user's conversations as one OpenChat JSON file. */
  exportAll: async (): Promise<Blob> =>
    (await unwrap(sdk.exportAll({ query: { format: "openchat" }, parseAs: "blob" }))) as unknown as Blob,
  /** Imports an export file (OpenChat, ChatGPT or Open WebUI JSON), reporting the upload's progress. */
  importFile: (file: Blob, progress: UploadProgress = {}) => upload<ImportResult>(`${API_BASE}/import`, file, progress),
  me: () => unwrap(sdk.me()),
  /** /auth/me without a token: answers only when the server runs without login. */
  meWithoutToken: () => unwrap(sdk.me({ fetch: plainFetch })),
  authStatus: () => unwrap(sdk.authStatus({ fetch: plainFetch })),
  /** Whether the server answers at all through the proxy (the connection monitor's probe). */
  serverReachable: async (): Promise<boolean> => {
    const { response } = await sdk.authStatus({ fetch: plainFetch, cache: "no-store" });
    return response !== undefined && !GATEWAY_ERRORS.has(response.status);
  },
  login: (email: string, password: string) => unwrap(sdk.login({ body: { email, password } })),
  signup: (email: string, password: string) => unwrap(sdk.signup({ body: { email, password } })),
  logout: () => unwrap(sdk.logout()),
  /** Starts a reply: the NDJSON body of `StreamEvent` lines (see lib/ndjson.ts). */
  chat: async (body: ChatRequest, signal: AbortSignal): Promise<ReadableStream<Uint8Array> | null> => {
    const stream = await unwrap(
      sdk.chat({ body, signal, parseAs: "stream", headers: { Accept: "application/x-ndjson" } }),
    );
    // parseAs "stream" hands back the body as is; the schema types it by its lines.
    return stream as unknown as ReadableStream<Uint8Array> | null;
  },
  /**
   * Attaches to the reply conversation `id` is generating: its events from the first, then live
   * (the same NDJSON as `chat`); null when none is (204).
   */
  stream: async (id: string, signal: AbortSignal): Promise<ReadableStream<Uint8Array> | null> => {
    const { data, error, response } = await sdk.followReply({
      ...conversation(id),
      signal,
      parseAs: "stream",
      headers: { Accept: "application/x-ndjson" },
    });
    if (!response) throw error;
    if (!response.ok) throw apiError(response.status, response.headers, error);
    if (response.status === 204) return null;
    return data as unknown as ReadableStream<Uint8Array> | null;
  },
  /** Stops the reply conversation `id` is generating (stored `cancelled`); nothing when none is. */
  stop: (id: string) => unwrap(sdk.stopReply(conversation(id))),
};
