import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { test as base, expect, type Page } from "@playwright/test";

import { AuthPage } from "./pages/auth-page";
import { ChatPage } from "./pages/chat-page";
import { backendEnv, startBackend, stopAndWait, waitFor } from "./servers";

export { TEST_MAX_TOKENS } from "./servers";

type ServerEnv =
  | "E2E_BASE_URL"
  | "E2E_AUTH_BASE_URL"
  | "E2E_EXPIRY_BASE_URL"
  | "E2E_BUSY_BASE_URL"
  | "E2E_DOWN_BASE_URL"
  | "E2E_BUSY_BACKEND_URL"
  | "E2E_DOWN_BACKEND_PORT";

/** A value the global setup passed on (a server's URL or port). */
export function serverEnv(name: ServerEnv): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the global setup did not run`);
  return value;
}

type Fixtures = { chat: ChatPage; auth: AuthPage };

/**
 * The web app's replies are resumable: closing the page no longer stops one. A reply a test left
 * generating (a failed test, or one that ends mid-reply) is stopped, so that it holds neither the
 * model nor the user's generation places in the tests after. Where the server needs a login the
 * list answers 401 and nothing is done (those tests' replies are short).
 */
async function stopGeneratingReplies(page: Page) {
  const res = await page.request.get("/api/v1/conversations").catch(() => null);
  if (!res?.ok()) return;
  const { conversations } = (await res.json()) as { conversations: { id: string; generating?: boolean }[] };
  for (const c of conversations.filter((c) => c.generating)) {
    await page.request.post(`/api/v1/conversations/${encodeURIComponent(c.id)}/stop`).catch(() => null);
  }
}

function makeTest(baseURLEnv: ServerEnv) {
  return base.extend<Fixtures>({
    baseURL: async ({}, use) => {
      await use(serverEnv(baseURLEnv));
    },
    chat: async ({ page }, use) => {
      await use(new ChatPage(page));
      await stopGeneratingReplies(page);
    },
    auth: async ({ page }, use) => {
      await use(new AuthPage(page));
    },
  });
}

/** Tests against the single-user backend (OPENCHAT_AUTH=off). */
export const test = makeTest("E2E_BASE_URL");
/** Tests against the backend with accounts (OPENCHAT_AUTH=required). */
export const authTest = makeTest("E2E_AUTH_BASE_URL");
/** Tests against a backend whose access tokens expire after 6 seconds. */
export const expiryTest = makeTest("E2E_EXPIRY_BASE_URL");
/**
 * Tests against a single-user backend with no waiting queue (OPENCHAT_QUEUE_SIZE=0): a chat
 * request while the model is generating gets 429. `backendURL` is that backend itself.
 */
export const busyTest = makeTest("E2E_BUSY_BASE_URL").extend<{ backendURL: string }>({
  backendURL: async ({}, use) => {
    await use(serverEnv("E2E_BUSY_BACKEND_URL"));
  },
});

type DownBackend = {
  /**
   * Starts a real backend (auth off unless `env` says otherwise) on the port the server
   * forwards to. Its database and data directory live as long as the test.
   */
  start: (env?: Record<string, string>) => Promise<void>;
  /** Stops it (a later `start` keeps the same database). */
  stop: () => Promise<void>;
  /** Kills it at once, as SIGKILL or a power cut would (a later `start` keeps the same database). */
  kill: () => Promise<void>;
};

/**
 * Tests against a Next.js server whose backend is not running. `downBackend.start()` starts
 * one on that port; it is stopped when the test ends, whatever happened.
 */
export const downTest = makeTest("E2E_DOWN_BASE_URL").extend<{ downBackend: DownBackend }>({
  downBackend: async ({}, use) => {
    const port = Number(serverEnv("E2E_DOWN_BACKEND_PORT"));
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "openchat-e2e-down-"));
    const running: { proc?: ChildProcess; starts: number } = { starts: 0 };
    const stop = async () => {
      if (running.proc) await stopAndWait(running.proc);
      running.proc = undefined;
    };
    try {
      await use({
        start: async (env = {}) => {
          if (running.proc) throw new Error("the backend is already running");
          running.starts += 1;
          running.proc = startBackend(`backend-down-${running.starts}`, port, backendEnv(dataDir, env));
          await waitFor(`http://127.0.0.1:${port}/healthz`, running.proc, "backend-down");
        },
        stop,
        kill: async () => {
          if (running.proc?.pid) {
            const exited = new Promise<void>((resolve) => running.proc?.once("exit", () => resolve()));
            process.kill(-running.proc.pid, "SIGKILL");
            await exited;
          }
          running.proc = undefined;
        },
      });
    } finally {
      await stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  },
});
export { expect };

/** POST /api/v1/chat straight to a backend (not through the browser). */
export function postChat(
  backendURL: string,
  id: string,
  content: string,
  data: { max_tokens?: number; temperature?: number } = {},
): Promise<Response> {
  return fetch(`${backendURL}/api/v1/chat`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
    body: JSON.stringify({ id, messages: [{ role: "user", content }], data }),
  });
}

/** Samples `read()` every `intervalMs` until `done()` and returns the distinct values seen. */
export async function sampleWhile<T>(read: () => Promise<T>, done: () => Promise<boolean>, intervalMs = 150, maxMs = 60_000) {
  const seen: T[] = [];
  const end = Date.now() + maxMs;
  while (Date.now() < end) {
    const value = await read();
    if (seen[seen.length - 1] !== value) seen.push(value);
    if (await done()) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return seen;
}
