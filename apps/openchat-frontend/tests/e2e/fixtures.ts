import { test as base, expect } from "@playwright/test";

import { AuthPage } from "./pages/auth-page";
import { ChatPage } from "./pages/chat-page";

/** Short replies keep each test at a few seconds on this CPU; temperature 0 keeps them repeatable. */
export const TEST_MAX_TOKENS = 64;

type Fixtures = { chat: ChatPage; auth: AuthPage };

function makeTest(baseURLEnv: "E2E_BASE_URL" | "E2E_AUTH_BASE_URL" | "E2E_EXPIRY_BASE_URL") {
  return base.extend<Fixtures>({
    baseURL: async ({}, use) => {
      const url = process.env[baseURLEnv];
      if (!url) throw new Error(`${baseURLEnv} is not set: the global setup did not run`);
      await use(url);
    },
    page: async ({ page }, use) => {
      await page.addInitScript((maxTokens) => {
        const key = "openchat:settings:default";
        if (!window.localStorage.getItem(key)) {
          window.localStorage.setItem(key, JSON.stringify({ max_tokens: maxTokens, temperature: 0, top_p: 0.95 }));
        }
      }, TEST_MAX_TOKENS);
      await use(page);
    },
    chat: async ({ page }, use) => {
      await use(new ChatPage(page));
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
export { expect };

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
