/**
 * Forwards every /api/v1/* request to the backend, streaming both bodies through
 * without buffering, so chat tokens reach the browser one by one.
 */
import type { NextRequest } from "next/server";

import { clientAddressHookInstalled } from "@/lib/client-address-hook";
import { CLIENT_ADDRESS_HEADER, foreignOrigin } from "@/lib/proxy-headers";

export const dynamic = "force-dynamic";
export const runtime = "nodejs";

const BACKEND_URL = (process.env.BACKEND_URL ?? "http://127.0.0.1:8000").replace(/\/+$/, "");

// Content-Length too: the body is streamed on as it arrives (an import file can be 100 MB), and
// with its size known the backend can refuse one too large before reading it.
const REQUEST_HEADERS = [
  "authorization",
  "cookie",
  "content-type",
  "content-length",
  "accept",
  "accept-language",
  "user-agent",
];
// Hop-by-hop headers and ones that no longer describe the (already decoded) body.
const DROPPED_RESPONSE_HEADERS = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-encoding",
  "content-length",
  "set-cookie",
  "date",
  "server",
]);

type Context = { params: Promise<{ path: string[] }> };

async function proxy(request: NextRequest, context: Context): Promise<Response> {
  const { path } = await context.params;
  const target = `${BACKEND_URL}/api/v1/${path.map(encodeURIComponent).join("/")}${request.nextUrl.search}`;

  const headers = new Headers();
  for (const name of REQUEST_HEADERS) {
    const value = request.headers.get(name);
    if (value) headers.set(name, value);
  }
  // The address this server saw (or its trusted proxies did): the backend's rate limits count it.
  // Without the hook, the header could be the client's own: then none is sent (safe, but shared).
  const client = clientAddressHookInstalled() ? request.headers.get(CLIENT_ADDRESS_HEADER) : null;
  if (client) headers.set("x-forwarded-for", client);
  const origin = foreignOrigin(request.headers.get("origin"), request.headers.get("host"));
  if (origin) headers.set("origin", origin);
  headers.set(
    "x-forwarded-proto",
    request.headers.get("x-forwarded-proto") ?? request.nextUrl.protocol.replace(":", ""),
  );

  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  let upstream: Response;
  try {
    upstream = await fetch(target, {
      method: request.method,
      headers,
      body: hasBody ? request.body : undefined,
      // Required by Node's fetch for a streamed request body.
      ...(hasBody ? { duplex: "half" } : {}),
      redirect: "manual",
      cache: "no-store",
      signal: request.signal,
    } as RequestInit);
  } catch (error) {
    if (request.signal.aborted) return new Response(null, { status: 499 });
    console.error("[api proxy] backend unreachable:", error);
    return Response.json(
      { detail: "The OpenChat backend is not reachable.", code: "backend_unreachable" },
      { status: 502 },
    );
  }

  const responseHeaders = new Headers();
  upstream.headers.forEach((value, name) => {
    if (!DROPPED_RESPONSE_HEADERS.has(name.toLowerCase())) responseHeaders.set(name, value);
  });
  for (const cookie of upstream.headers.getSetCookie()) responseHeaders.append("set-cookie", cookie);
  const contentType = upstream.headers.get("content-type") ?? "";
  if (contentType.includes("ndjson") || contentType.includes("event-stream")) {
    // Keep any compression or proxy layer from holding tokens back.
    responseHeaders.set("cache-control", "no-cache, no-transform");
    responseHeaders.set("x-accel-buffering", "no");
  }

  const nullBody = [101, 204, 205, 304].includes(upstream.status) || request.method === "HEAD";
  return new Response(nullBody ? null : upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: responseHeaders,
  });
}

export const GET = proxy;
export const POST = proxy;
export const PUT = proxy;
export const PATCH = proxy;
export const DELETE = proxy;
export const OPTIONS = proxy;
export const HEAD = proxy;
