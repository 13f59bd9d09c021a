import http from "node:http";
import type { AddressInfo } from "node:net";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { clientAddressHookInstalled, installClientAddressHook } from "@/lib/client-address-hook";
import {
  CLIENT_ADDRESS_HEADER,
  clientAddress,
  foreignOrigin,
  plainAddress,
  trustedProxies,
} from "@/lib/proxy-headers";

describe("trustedProxies", () => {
  it("trusts nobody by default", () => {
    expect(trustedProxies(undefined)("127.0.0.1")).toBe(false);
    expect(trustedProxies("")("10.0.0.1")).toBe(false);
  });

  it("matches addresses and networks, IPv4 seen through IPv6 too", () => {
    const trusted = trustedProxies("10.0.0.0/8, 192.0.2.7 ,::1");
    expect(trusted("10.20.30.40")).toBe(true);
    expect(trusted("::ffff:10.1.2.3")).toBe(true);
    expect(trusted("192.0.2.7")).toBe(true);
    expect(trusted("192.0.2.8")).toBe(false);
    expect(trusted("::1")).toBe(true);
    expect(trusted("not an address")).toBe(false);
    expect(trustedProxies("*")("203.0.113.1")).toBe(true);
  });

  it("refuses a malformed entry at start-up", () => {
    expect(() => trustedProxies("10.0.0.0/8,nginx")).toThrow(/nginx/);
  });
});

describe("clientAddress", () => {
  const none = trustedProxies("");
  const lb = trustedProxies("10.0.0.0/8");

  it("is the peer when the peer is not a trusted proxy, whatever the client claims", () => {
    expect(clientAddress("203.0.113.5", "1.2.3.4", none)).toBe("203.0.113.5");
    expect(clientAddress("::ffff:203.0.113.5", undefined, none)).toBe("203.0.113.5");
    expect(clientAddress("203.0.113.5", "10.0.0.2", lb)).toBe("203.0.113.5");
  });

  it("reads a trusted proxy's chain from the right, past trusted hops", () => {
    expect(clientAddress("10.0.0.1", "198.51.100.9", lb)).toBe("198.51.100.9");
    // "6.6.6.6" was written by the client itself: never believed.
    expect(clientAddress("10.0.0.1", "6.6.6.6, 198.51.100.9, 10.0.0.2", lb)).toBe("198.51.100.9");
    // Only proxies in the chain: the leftmost is the client.
    expect(clientAddress("10.0.0.1", "10.0.0.3, 10.0.0.2", lb)).toBe("10.0.0.3");
    expect(clientAddress("10.0.0.1", undefined, lb)).toBe("10.0.0.1");
  });

  it("writes IPv4 peers of a dual-stack socket plainly", () => {
    expect(plainAddress("::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(plainAddress("2001:db8::1")).toBe("2001:db8::1");
  });
});

describe("foreignOrigin", () => {
  it("drops the site's own origin and passes another site's on", () => {
    expect(foreignOrigin("http://localhost:3000", "localhost:3000")).toBeNull();
    expect(foreignOrigin("https://Chat.Example.com", "chat.example.com")).toBeNull();
    expect(foreignOrigin("https://evil.example", "chat.example.com")).toBe("https://evil.example");
    expect(foreignOrigin("null", "chat.example.com")).toBe("null");
    expect(foreignOrigin(null, "chat.example.com")).toBeNull();
  });
});

describe("the client-address hook on a real HTTP server", () => {
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    installClientAddressHook("");
    server = http.createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ client: req.headers[CLIENT_ADDRESS_HEADER], proto: req.headers["x-forwarded-proto"] }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("replaces whatever the client wrote with the socket's address", async () => {
    expect(clientAddressHookInstalled()).toBe(true);
    const response = await fetch(url, {
      headers: { "x-forwarded-for": "6.6.6.6", [CLIENT_ADDRESS_HEADER]: "7.7.7.7", "x-forwarded-proto": "https" },
    });
    expect(await response.json()).toEqual({ client: "127.0.0.1", proto: "http" });
  });
});
