/**
 * Runs before every page: gives the page a Content-Security-Policy with a fresh nonce. The nonce
 * goes on the request too (`Content-Security-Policy` and `x-nonce`), where Next.js reads it to
 * mark its own scripts and the root layout reads it for the theme script; that is also why every
 * page is rendered per request.
 */
import { NextResponse, type NextRequest } from "next/server";

import { contentSecurityPolicy, newNonce } from "@/lib/security-headers";

export function proxy(request: NextRequest) {
  const nonce = newNonce();
  const policy = contentSecurityPolicy(nonce, process.env.NODE_ENV === "development");
  const requestHeaders = new Headers(request.headers);
  requestHeaders.set("x-nonce", nonce);
  requestHeaders.set("Content-Security-Policy", policy);
  const response = NextResponse.next({ request: { headers: requestHeaders } });
  response.headers.set("Content-Security-Policy", policy);
  return response;
}

export const config = {
  matcher: [
    // Pages only: the API carries the backend's own headers, static files run nothing inline.
    {
      source: "/((?!api/|_next/static/|_next/image|favicon.ico|icon.svg).*)",
      missing: [
        { type: "header", key: "next-router-prefetch" },
        { type: "header", key: "purpose", value: "prefetch" },
      ],
    },
  ],
};
