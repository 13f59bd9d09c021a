/**
 * Starts the servers the e2e tests need and returns the teardown:
 *  - real backends (each `uvicorn app:app` from ../openchat-backend, fresh temp SQLite + data
 *    dir, 0.5B model, at most 2 parallel generation slots): auth off; auth required; auth
 *    required with 6-second access tokens; auth off with one slot and no waiting queue (a
 *    second request while the model generates gets 429),
 *  - the production build's standalone server (`node .next/standalone/server.js`, as `make run`
 *    starts it) in front of each (BACKEND_URL pointing at it),
 *  - one more standalone server whose BACKEND_URL is a free port where nothing listens: the
 *    "server unreachable" test starts a backend there itself.
 * URLs are passed to the tests through environment variables.
 */
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import {
  backendEnv,
  ensureStandaloneBuild,
  FRONTEND_DIR,
  freePort,
  LOG_DIR,
  STANDALONE_SERVER,
  start,
  startBackend,
  stopGroup,
  UVICORN,
  waitFor,
} from "./servers";

export default async function globalSetup() {
  if (!fs.existsSync(UVICORN)) throw new Error(`Backend venv not found at ${UVICORN}; run the backend setup first.`);
  ensureStandaloneBuild();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "openchat-e2e-"));
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const procs: ChildProcess[] = [];
  const ports = new Set<number>();
  const port = async () => {
    const p = await freePort(ports);
    ports.add(p);
    return p;
  };

  const backends: { name: string; env: Record<string, string>; urlEnv: string }[] = [
    { name: "backend-off", env: { OPENCHAT_AUTH: "off" }, urlEnv: "E2E_BACKEND_URL" },
    { name: "backend-auth", env: { OPENCHAT_AUTH: "required" }, urlEnv: "E2E_AUTH_BACKEND_URL" },
    // Access tokens that really expire after 6 s, for the silent-refresh test.
    {
      name: "backend-expiry",
      env: { OPENCHAT_AUTH: "required", OPENCHAT_ACCESS_TOKEN_MINUTES: "0.1" },
      urlEnv: "E2E_EXPIRY_BACKEND_URL",
    },
    // One generation slot and no waiting queue: while the model generates, another chat
    // request gets a real 429. The chat rate limit (also a 429) is raised so that only "model
    // busy" can answer 429 here, even after the sidebar test has created its conversations.
    // No summary titles: the sidebar test's 65 first exchanges would each wait for one.
    {
      name: "backend-busy",
      env: {
        OPENCHAT_AUTH: "off",
        OPENCHAT_LOCAL_SLOTS: "1",
        OPENCHAT_QUEUE_SIZE: "0",
        OPENCHAT_RATE_LIMIT_CHAT: "1000/minute",
        OPENCHAT_GENERATE_TITLES: "false",
      },
      urlEnv: "E2E_BUSY_BACKEND_URL",
    },
  ];
  const urls: Record<string, string> = {};
  try {
    const started: ChildProcess[] = [];
    for (const b of backends) {
      const p = await port();
      const dataDir = path.join(tmp, b.name);
      fs.mkdirSync(dataDir, { recursive: true });
      const proc = startBackend(b.name, p, backendEnv(dataDir, b.env));
      procs.push(proc);
      started.push(proc);
      urls[b.name] = `http://127.0.0.1:${p}`;
    }
    for (const [i, b] of backends.entries()) {
      await waitFor(`${urls[b.name]}/healthz`, started[i]!, b.name);
      process.env[b.urlEnv] = urls[b.name];
    }

    // Nothing listens here until the "server unreachable" test starts a backend on it.
    const downPort = await port();
    process.env.E2E_DOWN_BACKEND_PORT = String(downPort);

    // `ready` is fetched until it answers below 500: through the proxy where a backend runs.
    const fronts: { name: string; backend: string; env: string; ready: string }[] = [
      { name: "next-off", backend: urls["backend-off"]!, env: "E2E_BASE_URL", ready: "/api/v1/models" },
      { name: "next-auth", backend: urls["backend-auth"]!, env: "E2E_AUTH_BASE_URL", ready: "/api/v1/models" },
      { name: "next-expiry", backend: urls["backend-expiry"]!, env: "E2E_EXPIRY_BASE_URL", ready: "/api/v1/models" },
      { name: "next-busy", backend: urls["backend-busy"]!, env: "E2E_BUSY_BASE_URL", ready: "/api/v1/models" },
      { name: "next-down", backend: `http://127.0.0.1:${downPort}`, env: "E2E_DOWN_BASE_URL", ready: "/login" },
    ];
    for (const f of fronts) {
      const p = await port();
      const proc = start(f.name, process.execPath, [STANDALONE_SERVER], FRONTEND_DIR, {
        PORT: String(p),
        HOSTNAME: "127.0.0.1",
        BACKEND_URL: f.backend,
        NEXT_TELEMETRY_DISABLED: "1",
        NODE_ENV: "production",
      });
      procs.push(proc);
      const url = `http://127.0.0.1:${p}`;
      await waitFor(`${url}${f.ready}`, proc, f.name);
      process.env[f.env] = url;
    }
    // Load the model once so the first test does not pay for it.
    await fetch(`${process.env.E2E_BASE_URL}/api/v1/chat`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: "e2e-warmup", messages: [{ role: "user", content: "Hi" }], data: { max_tokens: 2 } }),
    }).then((r) => r.text());
    await fetch(`${process.env.E2E_BASE_URL}/api/v1/conversations/e2e-warmup`, { method: "DELETE" });
  } catch (error) {
    stopAll(procs);
    throw error;
  }

  return async () => {
    stopAll(procs);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
}

function stopAll(procs: ChildProcess[]) {
  for (const p of procs) stopGroup(p);
}
