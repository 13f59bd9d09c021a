/**
 * Tells the API proxy who is really asking. A route handler never sees the TCP peer, and Next.js
 * only fills X-Forwarded-For when the client did not send one, so a made-up header would pass as
 * the client's address. Node announces every request on the `http.server.request.start`
 * diagnostics channel, with its socket, before Next.js sees it: from there the client's address
 * is written into a header of our own (replacing any the client sent). Installed at start-up by
 * instrumentation.ts; server-only.
 */
import { subscribe } from "node:diagnostics_channel";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";

import { CLIENT_ADDRESS_HEADER, clientAddress, type Trusted, trustedProxies } from "@/lib/proxy-headers";

const INSTALLED = Symbol.for("openchat.clientAddressHook");
type Installed = { [INSTALLED]?: boolean };

export function installClientAddressHook(trustedList: string | undefined): void {
  const flags = globalThis as Installed;
  if (flags[INSTALLED]) return;
  const trusted: Trusted = trustedProxies(trustedList);
  subscribe("http.server.request.start", (message) => {
    const { request, socket } = message as { request: IncomingMessage; socket: Socket };
    const peer = socket.remoteAddress ?? "";
    const forwardedFor = request.headers["x-forwarded-for"];
    const chain = Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor;
    request.headers[CLIENT_ADDRESS_HEADER] = clientAddress(peer, chain, trusted);
    // The scheme too: only a trusted proxy may say the client used https.
    if (!trusted(peer)) {
      request.headers["x-forwarded-proto"] = (socket as { encrypted?: boolean }).encrypted ? "https" : "http";
    }
  });
  flags[INSTALLED] = true;
}

/** Whether CLIENT_ADDRESS_HEADER is this server's own (else a client could have written it). */
export function clientAddressHookInstalled(): boolean {
  return (globalThis as Installed)[INSTALLED] === true;
}
