/**
 * Starting and stopping the real servers the e2e tests run against (used by the global
 * setup, and by tests that start a backend themselves).
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const FRONTEND_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BACKEND_DIR = path.resolve(FRONTEND_DIR, "../openchat-backend");
export const UVICORN = path.join(BACKEND_DIR, ".venv/bin/uvicorn");
/** What `next build` writes with `output: "standalone"` (see next.config.ts); `make run` starts it too. */
export const STANDALONE_DIR = path.join(FRONTEND_DIR, ".next/standalone");
export const STANDALONE_SERVER = path.join(STANDALONE_DIR, "server.js");
export const LOG_DIR = path.join(FRONTEND_DIR, "test-results/logs");
export const TEST_MODEL = "qwen2.5-coder-0.5b-instruct";
/**
 * The backends' default reply length (OPENCHAT_DEFAULT_MAX_TOKENS, and so the models' default
 * max_tokens in GET /models, which a new chat starts with): a few seconds per reply on this CPU.
 */
export const TEST_MAX_TOKENS = 64;

/**
 * Checks that a production build exists. Its static files are not copied here: the Makefile
 * copies them next to server.js after each build, and `standalone-server.setup.ts` checks that
 * they are served.
 */
export function ensureStandaloneBuild(): void {
  if (!fs.existsSync(STANDALONE_SERVER) || !fs.existsSync(path.join(FRONTEND_DIR, ".next/BUILD_ID"))) {
    throw new Error("No standalone production build found: run `npm run build` before `npm run test:e2e`.");
  }
}

/** A port nothing listens on right now (never one of `exclude`). */
export async function freePort(exclude: ReadonlySet<number> = new Set()): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on("error", reject);
      srv.listen(0, "127.0.0.1", () => {
        const addr = srv.address();
        const p = typeof addr === "object" && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (!exclude.has(port)) return port;
  }
}

export async function waitFor(url: string, proc: ChildProcess, name: string, timeoutMs = 120_000): Promise<void> {
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

/** Spawns a server in its own process group, logging to test-results/logs/<name>.log. */
export function start(name: string, cmd: string, args: string[], cwd: string, env: Record<string, string>) {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const log = fs.openSync(path.join(LOG_DIR, `${name}.log`), "w");
  const proc = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", log, log], detached: true });
  fs.closeSync(log); // the child has its own copy
  return proc;
}

/**
 * Environment of a backend with a fresh SQLite database and data directory in `dataDir`.
 * Two parallel generation slots (OPENCHAT_LOCAL_SLOTS; 0 would size them to the machine) keep
 * memory low with four backends running at once; replies default to TEST_MAX_TOKENS tokens;
 * `extra` may set other values.
 */
export function backendEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OPENCHAT_AUTH: "off",
    OPENCHAT_LOCAL_SLOTS: "2",
    OPENCHAT_ACCESS_TOKEN_MINUTES: "15",
    OPENCHAT_DEFAULT_MODEL: TEST_MODEL,
    OPENCHAT_DEFAULT_MAX_TOKENS: String(TEST_MAX_TOKENS),
    DATABASE_URL: `sqlite:///${path.join(dataDir, "openchat.db")}`,
    OPENCHAT_DATA_DIR: dataDir,
    OPENCHAT_SECRET_KEY: "e2e-test-secret-key-not-for-production-0123456789",
    ...extra,
  };
}

/** `uvicorn app:app` from ../openchat-backend on 127.0.0.1:`port`, started as `make run` starts it
 * (forwarding headers are the app's to judge: OPENCHAT_TRUSTED_PROXIES). */
export function startBackend(name: string, port: number, env: Record<string, string>) {
  const args = ["app:app", "--host", "127.0.0.1", "--port", String(port), "--no-proxy-headers"];
  return start(name, UVICORN, args, BACKEND_DIR, env);
}

/** SIGTERM to the whole process group (a server's children too). */
export function stopGroup(proc: ChildProcess) {
  if (proc.pid && proc.exitCode === null && proc.signalCode === null) {
    try {
      process.kill(-proc.pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
}

/** Stops the process group and waits until the process has exited (SIGKILL after `graceMs`). */
export async function stopAndWait(proc: ChildProcess, graceMs = 10_000): Promise<void> {
  if (!proc.pid || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  stopGroup(proc);
  const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), graceMs));
  if ((await Promise.race([exited, timer])) === "timeout") {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await exited;
  }
}
