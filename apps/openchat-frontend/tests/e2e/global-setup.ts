/**
 * Starts the servers the e2e tests need and returns the teardown:
 *  - backend A with OPENCHAT_AUTH=off, backend B with OPENCHAT_AUTH=required
 *    (each `uvicorn app:app` from ../openchat-backend, fresh temp SQLite + data dir, 0.5B model),
 *  - a `next start` production server in front of each (BACKEND_URL pointing at it).
 * URLs are passed to the tests through environment variables.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const FRONTEND_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BACKEND_DIR = path.resolve(FRONTEND_DIR, "../openchat-backend");
const UVICORN = path.join(BACKEND_DIR, ".venv/bin/uvicorn");
const NEXT_BIN = path.join(FRONTEND_DIR, "node_modules/next/dist/bin/next");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(url: string, proc: ChildProcess, name: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${name} exited early with code ${proc.exitCode}`);
    try {
      const res = await fetch(url);
      if (res.status < 500) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${name} did not become ready at ${url}`);
}

function start(name: string, cmd: string, args: string[], cwd: string, env: Record<string, string>, logDir: string) {
  const log = fs.openSync(path.join(logDir, `${name}.log`), "w");
  const proc = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", log, log], detached: true });
  return proc;
}

export default async function globalSetup() {
  if (!fs.existsSync(UVICORN)) throw new Error(`Backend venv not found at ${UVICORN}; run the backend setup first.`);
  if (!fs.existsSync(path.join(FRONTEND_DIR, ".next/BUILD_ID"))) {
    throw new Error("No production build found: run `npm run build` before `npm run test:e2e`.");
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "openchat-e2e-"));
  const logDir = path.join(FRONTEND_DIR, "test-results/logs");
  fs.mkdirSync(logDir, { recursive: true });
  const procs: ChildProcess[] = [];

  const backends = [
    { name: "backend-off", auth: "off", tokenMinutes: "15" },
    { name: "backend-auth", auth: "required", tokenMinutes: "15" },
    // Access tokens that really expire after 6 s, for the silent-refresh test.
    { name: "backend-expiry", auth: "required", tokenMinutes: "0.1" },
  ];
  const urls: Record<string, string> = {};
  try {
    for (const b of backends) {
      const port = await freePort();
      const dataDir = path.join(tmp, b.name);
      fs.mkdirSync(dataDir, { recursive: true });
      const proc = start(
        b.name,
        UVICORN,
        ["app:app", "--host", "127.0.0.1", "--port", String(port)],
        BACKEND_DIR,
        {
          OPENCHAT_AUTH: b.auth,
          OPENCHAT_ACCESS_TOKEN_MINUTES: b.tokenMinutes,
          OPENCHAT_DEFAULT_MODEL: "qwen2.5-coder-0.5b-instruct",
          DATABASE_URL: `sqlite:///${path.join(dataDir, "openchat.db")}`,
          OPENCHAT_DATA_DIR: dataDir,
          OPENCHAT_SECRET_KEY: "e2e-test-secret-key-not-for-production-0123456789",
        },
        logDir,
      );
      procs.push(proc);
      urls[b.name] = `http://127.0.0.1:${port}`;
    }
    for (const b of backends) {
      await waitFor(`${urls[b.name]}/healthz`, procs[backends.indexOf(b)]!, b.name);
    }

    const fronts: { name: string; backend: string; env: string }[] = [
      { name: "next-off", backend: urls["backend-off"]!, env: "E2E_BASE_URL" },
      { name: "next-auth", backend: urls["backend-auth"]!, env: "E2E_AUTH_BASE_URL" },
      { name: "next-expiry", backend: urls["backend-expiry"]!, env: "E2E_EXPIRY_BASE_URL" },
    ];
    for (const f of fronts) {
      const port = await freePort();
      const proc = start(
        f.name,
        process.execPath,
        [NEXT_BIN, "start", "--hostname", "127.0.0.1", "--port", String(port)],
        FRONTEND_DIR,
        { BACKEND_URL: f.backend, NEXT_TELEMETRY_DISABLED: "1", NODE_ENV: "production" },
        logDir,
      );
      procs.push(proc);
      const url = `http://127.0.0.1:${port}`;
      await waitFor(`${url}/api/v1/models`, proc, f.name);
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
  for (const p of procs) {
    if (p.pid && p.exitCode === null) {
      try {
        process.kill(-p.pid, "SIGTERM"); // the whole process group (next start spawns a child)
      } catch {
        // already gone
      }
    }
  }
}
