import { downTest as test, expect } from "./fixtures";
import { recordValues } from "./observe";

// Issue 8, §4.2: when the server can't be reached the app says so, polls it, and comes back by
// itself once it answers, without a reload. These run against the Next.js server whose backend
// is down; `downBackend` starts a real one on that port mid-test.

/** A mark in the page's memory: still there afterwards means the page was not reloaded. */
async function markDocument(page: import("@playwright/test").Page) {
  await page.evaluate(() => ((window as unknown as { __sameDocument?: boolean }).__sameDocument = true));
}
async function isSameDocument(page: import("@playwright/test").Page) {
  return page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument === true);
}

test("recovers by itself once the server answers again, without a reload", async ({ chat, page, downBackend }) => {
  await page.goto("/");
  const unavailable = page.getByTestId("server-unavailable");
  await expect(unavailable).toBeVisible();
  await expect(unavailable).toContainText("reconnects by itself");
  await markDocument(page);

  // Try again really asks the server again (it is still down, so the message stays).
  const asked = page.waitForRequest((r) => new URL(r.url()).pathname.startsWith("/api/v1/auth/"));
  await page.getByRole("button", { name: "Try again" }).click();
  await asked;
  await expect(unavailable).toBeVisible();

  // The backend comes up; nobody clicks anything.
  await downBackend.start();
  await expect(chat.composer).toBeVisible({ timeout: 30_000 });
  await expect(unavailable).toHaveCount(0);
  expect(await isSameDocument(page)).toBe(true);
  await chat.sendAndWait("Say OK.");
  await expect(chat.replies).toHaveCount(1);
});

test("a chat request that finds the server gone shows offline, then reconnected, and Retry works", async ({
  chat,
  page,
  downBackend,
}) => {
  const states = await recordValues(page, "connection", '[data-testid="connection-status"]', "data-state");
  await downBackend.start();
  await chat.goto("/");
  await expect(page.getByTestId("connection-status")).toHaveCount(0);
  await markDocument(page);

  await downBackend.stop();
  await chat.send("Say OK.");
  const status = page.getByTestId("connection-status");
  await expect(status).toHaveAttribute("data-state", "offline");
  await expect(status).toContainText("can't be reached");
  await expect(chat.error).toBeVisible();
  // The user's message is kept.
  await expect(chat.userMessages).toHaveCount(1);

  await downBackend.start();
  // The banner says so when the server answers again, then goes away; no reload.
  await expect.poll(states, { timeout: 30_000 }).toContain("reconnected");
  await expect(status).toHaveCount(0);
  expect(await states()).toEqual([null, "offline", "reconnected", null]);
  expect(await isSameDocument(page)).toBe(true);

  await page.getByTestId("retry-button").click();
  await chat.waitForReply();
  await expect(chat.error).toBeHidden();
  await expect(chat.replies).toHaveCount(1);
});
