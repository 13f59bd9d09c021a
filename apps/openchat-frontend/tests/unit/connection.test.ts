import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { api } from "@/lib/api";
import { client } from "@/lib/api-client/client.gen";
import { checkConnection, getConnection, onReconnect, POLL_DELAYS_MS, RECONNECTED_MS } from "@/lib/connection";

// The connection monitor against a scripted fetch: `up` decides whether the "server" answers.
let up = true;
let gatewayError = false;
const paths: string[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  up = true;
  gatewayError = false;
  paths.length = 0;
  client.setConfig({ baseUrl: "http://openchat.test" });
  vi.stubGlobal(
    "fetch",
    vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      paths.push(new URL(request.url).pathname);
      if (request.signal.aborted) throw new DOMException("aborted", "AbortError");
      if (!up) throw new TypeError("fetch failed");
      if (gatewayError) return Response.json({ detail: "The OpenChat backend is not reachable." }, { status: 502 });
      return Response.json({ mode: "off", has_users: false, models: [] });
    }),
  );
});

afterEach(async () => {
  // Leave the module online for the next test.
  up = true;
  gatewayError = false;
  await checkConnection();
  await vi.advanceTimersByTimeAsync(RECONNECTED_MS);
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

const probes = () => paths.filter((p) => p === "/api/v1/auth/status").length;

describe("connection", () => {
  it("goes offline when a call gets no answer, polls with backoff, and recovers by itself", async () => {
    const reconnected = vi.fn();
    const stop = onReconnect(reconnected);
    up = false;
    await expect(api.models()).rejects.toThrow();
    expect(getConnection()).toBe("offline");

    // Polls after 2 s, 3 s, then every 5 s while nothing answers.
    await vi.advanceTimersByTimeAsync(POLL_DELAYS_MS[0] - 1);
    expect(probes()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(probes()).toBe(1);
    await vi.advanceTimersByTimeAsync(POLL_DELAYS_MS[1]);
    expect(probes()).toBe(2);
    await vi.advanceTimersByTimeAsync(POLL_DELAYS_MS[2]);
    expect(probes()).toBe(3);
    await vi.advanceTimersByTimeAsync(POLL_DELAYS_MS[2]);
    expect(probes()).toBe(4);
    expect(getConnection()).toBe("offline");
    expect(reconnected).not.toHaveBeenCalled();

    // The server answers again: "reconnected" (listeners told once), then plain online.
    up = true;
    await vi.advanceTimersByTimeAsync(POLL_DELAYS_MS[2]);
    expect(getConnection()).toBe("reconnected");
    expect(reconnected).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(RECONNECTED_MS);
    expect(getConnection()).toBe("online");
    // No more polling once online.
    const seen = probes();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(probes()).toBe(seen);
    stop();
  });

  it("treats the proxy's 502 as unreachable, and any other answer as back", async () => {
    gatewayError = true;
    await expect(api.models()).rejects.toMatchObject({ status: 502 });
    expect(getConnection()).toBe("offline");
    gatewayError = false;
    // Any call that gets an answer ends the offline state at once, without waiting for a poll.
    await api.models();
    expect(getConnection()).toBe("reconnected");
  });

  it("Try now asks at once", async () => {
    up = false;
    await expect(api.models()).rejects.toThrow();
    expect(await checkConnection()).toBe(false);
    expect(probes()).toBe(1);
    expect(getConnection()).toBe("offline");
    up = true;
    expect(await checkConnection()).toBe(true);
    expect(getConnection()).toBe("reconnected");
  });

  it("an aborted request is not a lost connection", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(api.chat({ id: "c1", messages: [{ role: "user", content: "Hi" }] }, controller.signal)).rejects.toThrow();
    expect(getConnection()).toBe("online");
  });
});
