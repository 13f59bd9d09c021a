import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { api, ApiError, setAccessToken, setOnUnauthorized } from "@/lib/api";
import { client } from "@/lib/api-client/client.gen";

// The wrapper around the generated client, against a scripted fetch (the browser's relative
// URLs need an origin in Node).
type Reply = { status: number; body?: unknown; headers?: Record<string, string> };

const sent: Request[] = [];
const bodies: unknown[] = [];
let replies: Record<string, Reply[]> = {};

function script(path: string, ...answers: Reply[]) {
  replies[path] = answers;
}

beforeEach(() => {
  sent.length = 0;
  bodies.length = 0;
  replies = {};
  setAccessToken(null);
  client.setConfig({ baseUrl: "http://openchat.test" });
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      sent.push(request);
      bodies.push(init?.body);
      const reply = replies[new URL(request.url).pathname]?.shift();
      if (!reply) throw new TypeError("fetch failed");
      const body = reply.body === undefined ? null : JSON.stringify(reply.body);
      return new Response(body, {
        status: reply.status,
        headers: { "Content-Type": "application/json", ...reply.headers },
      });
    }),
  );
});

afterEach(() => {
  vi.unstubAllGlobals();
  setOnUnauthorized(null);
});

const chatBody = { id: "c1", messages: [{ role: "user", content: "Hi" }], data: { temperature: 0.5 } };

describe("api", () => {
  it("sends a body as bytes, as fetch(url, { body }) does, not as a stream", async () => {
    // A stream body goes out without Content-Length, and dev tools and Playwright see none.
    script("/api/v1/chat", { status: 200, body: {} });
    await api.chat(chatBody, new AbortController().signal);
    expect(bodies[0]).toBeInstanceOf(ArrayBuffer);
    expect(await sent[0]?.json()).toEqual(chatBody);
  });

  it("sends the bearer token", async () => {
    setAccessToken("t1");
    script("/api/v1/models", { status: 200, body: { models: [] } });
    await expect(api.models()).resolves.toEqual({ models: [] });
    expect(sent[0]?.headers.get("Authorization")).toBe("Bearer t1");
  });

  it("on a 401 refreshes once and sends the same request again, body included", async () => {
    setAccessToken("old");
    script("/api/v1/chat", { status: 401, body: { detail: "expired" } }, { status: 200, body: { type: "token" } });
    script("/api/v1/auth/refresh", { status: 200, body: { access_token: "new", token_type: "bearer", expires_in: 900 } });

    const stream = await api.chat(chatBody, new AbortController().signal);

    expect(await new Response(stream).json()).toEqual({ type: "token" });
    expect(sent.map((r) => new URL(r.url).pathname)).toEqual(["/api/v1/chat", "/api/v1/auth/refresh", "/api/v1/chat"]);
    expect(sent[1]?.headers.get("Authorization")).toBeNull();
    expect(sent[2]?.headers.get("Authorization")).toBe("Bearer new");
    expect(await sent[2]?.json()).toEqual(chatBody);
  });

  it("renews a token about to expire before sending, instead of having the request refused", async () => {
    setAccessToken("old", 0.5); // half a second left
    script("/api/v1/auth/refresh", { status: 200, body: { access_token: "new", token_type: "bearer", expires_in: 900 } });
    script("/api/v1/models", { status: 200, body: { models: [] } });

    await expect(api.models()).resolves.toEqual({ models: [] });
    expect(sent.map((r) => new URL(r.url).pathname)).toEqual(["/api/v1/auth/refresh", "/api/v1/models"]);
    expect(sent[1]?.headers.get("Authorization")).toBe("Bearer new");
  });

  it("sends the user to login when the refresh fails too", async () => {
    const unauthorized = vi.fn();
    setOnUnauthorized(unauthorized);
    script("/api/v1/conversations", { status: 401, body: { detail: "Not signed in" } });
    script("/api/v1/auth/refresh", { status: 401, body: { detail: "No session" } });

    await expect(api.conversations({})).rejects.toMatchObject({ status: 401, message: "Not signed in" });
    expect(unauthorized).toHaveBeenCalledTimes(1);
  });

  it("turns error bodies into readable ApiErrors with code and Retry-After", async () => {
    script(
      "/api/v1/chat",
      { status: 400, body: { detail: "Unknown model 'x'.", code: "unknown_model" } },
      { status: 429, body: {}, headers: { "Retry-After": "7" } },
    );
    const signal = new AbortController().signal;

    const invalid = await api.chat(chatBody, signal).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(ApiError);
    expect(invalid).toMatchObject({ status: 400, code: "unknown_model", message: "Unknown model 'x'." });

    await expect(api.chat(chatBody, signal)).rejects.toMatchObject({
      status: 429,
      retryAfter: 7,
      message: "The model is busy. Please try again shortly.",
    });
  });

  it("lets a network failure through as it is, not as an ApiError", async () => {
    const error = await api.me().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
  });

  it("passes query parameters and path ids", async () => {
    script("/api/v1/conversations", { status: 200, body: { conversations: [], next_cursor: null } });
    script("/api/v1/conversations/a%2Fb", { status: 200, body: { id: "a/b", title: "T" } });
    await api.conversations({ q: "rust", limit: 30, cursor: null });
    await api.rename("a/b", "T");
    expect(new URL(sent[0]!.url).search).toBe("?q=rust&limit=30");
    expect(sent[1]?.method).toBe("PATCH");
    expect(await sent[1]?.json()).toEqual({ title: "T" });
  });

  it("attaches to a generating reply with GET /stream: its lines, or null when none generates (204)", async () => {
    script("/api/v1/conversations/c1/stream", { status: 200, body: { type: "token", content: "Hi" } }, { status: 204 });
    const signal = new AbortController().signal;

    const stream = await api.stream("c1", signal);
    expect(await new Response(stream).json()).toEqual({ type: "token", content: "Hi" });
    expect(sent[0]?.method).toBe("GET");
    expect(sent[0]?.headers.get("Accept")).toBe("application/x-ndjson");
    await expect(api.stream("c1", signal)).resolves.toBeNull();
  });

  it("stops a reply with POST /stop, and reports another user's conversation as not found", async () => {
    script("/api/v1/conversations/c1/stop", { status: 204 }, { status: 404, body: { detail: "Conversation not found.", code: "not_found" } });
    await api.stop("c1");
    expect(sent[0]?.method).toBe("POST");
    await expect(api.stop("c1")).rejects.toMatchObject({ status: 404, message: "Conversation not found." });
  });
});
