/**
 * Through the real standalone Next.js server and a real backend: the address the backend's rate
 * limits count is the one the Next.js server saw, not an X-Forwarded-For the client wrote (issue
 * 10: a made-up header per request got 25 sign-ups past a limit of 20); a proxy the Next.js server
 * trusts (TRUSTED_PROXIES) is believed. And another site's page cannot post to /auth.
 */
import type { APIRequestContext } from "@playwright/test";

import { downTest as test, expect, serverEnv } from "./fixtures";
import { FRONTEND_DIR, freePort, STANDALONE_SERVER, start, stopAndWait, waitFor } from "./servers";

const PASSWORD = "correct horse battery";

function signup(request: APIRequestContext, base: string, email: string, headers: Record<string, string> = {}) {
  return request.post(`${base}/api/v1/auth/signup`, { data: { email, password: PASSWORD }, headers });
}

test("a client's own X-Forwarded-For does not reach the backend as its address; a trusted proxy's does", async ({
  request,
  baseURL,
  downBackend,
}) => {
  await downBackend.start({ OPENCHAT_AUTH: "required", OPENCHAT_RATE_LIMIT_SIGNUP: "3/hour", OPENCHAT_WARM_UP: "false" });
  const site = baseURL!;

  // A browser (or script) talking to the Next.js server directly, claiming another address each time.
  for (let n = 1; n <= 3; n++) {
    const response = await signup(request, site, `direct${n}@example.com`, { "X-Forwarded-For": `198.51.100.${n}` });
    expect(response.status()).toBe(201);
  }
  const fourth = await signup(request, site, "direct4@example.com", { "X-Forwarded-For": "198.51.100.4" });
  expect(fourth.status()).toBe(429);
  expect((await fourth.json()).code).toBe("rate_limited");

  // A Next.js server behind a proxy it trusts (here: anything on loopback), in front of the same
  // backend: the address that proxy appended counts, not what the client wrote before it.
  const port = await freePort();
  const trusting = start("next-trusting-loopback", process.execPath, [STANDALONE_SERVER], FRONTEND_DIR, {
    PORT: String(port),
    HOSTNAME: "127.0.0.1",
    BACKEND_URL: `http://127.0.0.1:${serverEnv("E2E_DOWN_BACKEND_PORT")}`,
    TRUSTED_PROXIES: "127.0.0.1",
    NEXT_TELEMETRY_DISABLED: "1",
    NODE_ENV: "production",
  });
  try {
    const behindProxy = `http://127.0.0.1:${port}`;
    await waitFor(`${behindProxy}/login`, trusting, "next-trusting-loopback");
    for (let n = 1; n <= 3; n++) {
      const chain = { "X-Forwarded-For": `6.6.6.${n}, 192.0.2.10` };
      expect((await signup(request, behindProxy, `proxied${n}@example.com`, chain)).status()).toBe(201);
    }
    const chain = { "X-Forwarded-For": `6.6.6.99, 192.0.2.10` };
    expect((await signup(request, behindProxy, "proxied4@example.com", chain)).status()).toBe(429);
    const other = { "X-Forwarded-For": "192.0.2.11" };
    expect((await signup(request, behindProxy, "other@example.com", other)).status()).toBe(201);
  } finally {
    await stopAndWait(trusting);
  }
});

test("another site's page cannot sign in through the proxy; the site's own page and scripts can", async ({
  request,
  baseURL,
  downBackend,
}) => {
  await downBackend.start({ OPENCHAT_AUTH: "required", OPENCHAT_WARM_UP: "false" });
  const site = baseURL!;

  const refused = await signup(request, site, "evil@example.com", { Origin: "https://evil.example" });
  expect(refused.status()).toBe(403);
  expect(await refused.json()).toMatchObject({ code: "cross_origin", detail: expect.stringContaining("OPENCHAT_CORS_ORIGINS") });

  expect((await signup(request, site, "own@example.com", { Origin: site })).status()).toBe(201);
  const login = await request.post(`${site}/api/v1/auth/login`, { data: { email: "own@example.com", password: PASSWORD } });
  expect(login.status()).toBe(200);
});
