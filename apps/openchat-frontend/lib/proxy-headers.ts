/**
 * What the API proxy (app/api/v1/[...path]/route.ts) tells the backend about a request: the
 * client's address, as this server saw it, and the page's Origin when it is another site's.
 * Server-only (node:net).
 */
import { BlockList, isIP } from "node:net";

/** Set by the client-address hook on every request (overwriting any the client sent). */
export const CLIENT_ADDRESS_HEADER = "x-openchat-client-address";

export type Trusted = (address: string) => boolean;

/** "::ffff:192.0.2.1" (an IPv4 peer on a dual-stack socket) is 192.0.2.1. */
export function plainAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/**
 * TRUSTED_PROXIES: the proxies in front of this server (a load balancer, nginx) whose
 * X-Forwarded-For is believed; addresses or networks, comma-separated ("*" = any). Default none:
 * browsers connect to this server directly.
 */
export function trustedProxies(list: string | undefined): Trusted {
  const entries = (list ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.includes("*")) return () => true;
  const blocks = new BlockList();
  for (const entry of entries) {
    const [address = "", bits] = entry.split("/");
    const family = isIP(address) === 6 ? "ipv6" : "ipv4";
    if (!isIP(address)) throw new Error(`TRUSTED_PROXIES: "${entry}" is not an IP address or network`);
    if (bits === undefined) blocks.addAddress(address, family);
    else blocks.addSubnet(address, Number(bits), family);
  }
  return (address) => {
    const plain = plainAddress(address);
    const family = isIP(plain);
    return family !== 0 && blocks.check(plain, family === 6 ? "ipv6" : "ipv4");
  };
}

/**
 * The client's address: the peer's, unless the peer is a trusted proxy; then the chain the proxies
 * built (X-Forwarded-For, each appending the address it saw) is read from the right, past the
 * trusted ones. Entries on the left were written by the client and are never believed.
 */
export function clientAddress(peer: string, forwardedFor: string | undefined, trusted: Trusted): string {
  let address = plainAddress(peer);
  if (!trusted(address) || !forwardedFor) return address;
  const chain = forwardedFor
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  for (let i = chain.length - 1; i >= 0 && trusted(address); i--) address = plainAddress(chain[i]!);
  return address;
}

/**
 * The Origin to pass on to the backend: none for the site's own pages (the backend sees the proxy's
 * host, not this one), the Origin itself for another site's page, which the backend then refuses
 * on POST /auth/* unless OPENCHAT_CORS_ORIGINS allows it.
 */
export function foreignOrigin(origin: string | null, host: string | null): string | null {
  if (origin === null) return null;
  try {
    if (host !== null && new URL(origin).host === host.toLowerCase()) return null;
  } catch {
    // "null" (a sandboxed page, a file) or garbage: not this site.
  }
  return origin;
}
