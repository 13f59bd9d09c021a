import type { Page } from "@playwright/test";

import { expect, test } from "./fixtures";
import { ChatPage } from "./pages/chat-page";

// Issue 11, replies that survive a refresh (real backend, real 0.5B model): the web app sends
// every chat request resumable, so the reply goes on when the page goes away, and a page that
// opens the conversation while it generates shows the text so far and follows it to its end.

/**
 * A reply of several hundred tokens (temperature 0: the model really counts): it still generates
 * after each step of a test, however fast the machine. Tests that need not see it end stop it.
 */
const LONG_MAX_TOKENS = 400;

/** Starts a long real reply in a new chat and waits until some of it has streamed; returns the conversation id. */
async function startLongReply(chat: ChatPage, maxTokens = LONG_MAX_TOKENS): Promise<string> {
  await chat.goto("/");
  await chat.setMaxTokens(maxTokens);
  await chat.setTemperature(0);
  await chat.send("Count from 1 to 400, separated by commas.");
  await expect.poll(() => replyLength(chat), { timeout: 120_000 }).toBeGreaterThan(20);
  return chat.currentConversationId();
}

async function replyLength(chat: ChatPage): Promise<number> {
  return ((await chat.lastReplyText().textContent()) ?? "").length;
}

/** The conversation's last stored message, read from the server as another client would. */
async function storedReply(page: Page, id: string): Promise<{ status: string; content: string }> {
  const res = await page.request.get(`/api/v1/conversations/${encodeURIComponent(id)}`);
  expect(res.status()).toBe(200);
  const body = (await res.json()) as { messages: { role: string; status: string; content: string }[] };
  const last = body.messages[body.messages.length - 1];
  expect(last?.role).toBe("ai");
  return { status: last!.status, content: last!.content };
}

/** Waits until the text shown grows past `length`: the reply is streaming live here. */
async function expectGrowing(chat: ChatPage, length: number) {
  await expect.poll(() => replyLength(chat), { timeout: 120_000 }).toBeGreaterThan(length);
}

/** Stop in `chat`: the reply is stored cancelled with the text shown, and nothing generates any more. */
async function stopAndCheck(chat: ChatPage, id: string) {
  await chat.stopButton.click();
  await expect(chat.lastReply()).toHaveAttribute("data-status", "cancelled");
  await expect(chat.lastReply().getByTestId("message-stopped")).toBeVisible();
  await expect(chat.sendButton).toBeVisible();
  const shown = (await chat.lastReplyText().textContent()) ?? "";
  const stored = await storedReply(chat.page, id);
  expect(stored.status).toBe("cancelled");
  const follow = await chat.page.request.get(`/api/v1/conversations/${encodeURIComponent(id)}/stream`);
  expect(follow.status()).toBe(204);
  await expect(chat.lastReplyText()).toHaveText(shown);
  return shown;
}

test("a refresh mid-reply shows the text so far, keeps streaming, and the whole reply is stored", async ({ chat, page }) => {
  test.slow();
  // Long enough to refresh in the middle, short enough to wait for its end.
  const id = await startLongReply(chat, 160);
  const beforeReload = await replyLength(chat);

  await page.reload();
  // The text so far is there, at least what had arrived before the refresh, and it streams on.
  await expect(chat.lastReply()).toHaveAttribute("data-status", "streaming");
  await expect.poll(() => replyLength(chat)).toBeGreaterThanOrEqual(beforeReload);
  const afterReload = await replyLength(chat);
  await expectGrowing(chat, afterReload);
  await expect(chat.stopButton).toBeVisible();

  await chat.waitForReply(240_000);
  await expect(chat.lastReply()).toHaveAttribute("data-status", "complete");
  await expect(chat.lastReply().getByTestId("message-stopped")).toHaveCount(0);
  const shown = (await chat.lastReplyText().textContent()) ?? "";
  expect(shown.length).toBeGreaterThan(afterReload);

  const stored = await storedReply(page, id);
  expect(stored.status).toBe("complete");
  // Opened again, the stored reply reads as it did live.
  await page.reload();
  await expect(chat.lastReply()).toHaveAttribute("data-status", "complete");
  await expect(chat.lastReplyText()).toHaveText(shown);
  await expect(chat.replies).toHaveCount(1);
});

test("opening another conversation mid-reply does not stop it: back, it is still streaming, not cancelled", async ({
  chat,
  page,
}) => {
  test.slow();
  // A short conversation to switch to.
  await chat.goto("/");
  await chat.setMaxTokens(8);
  await chat.sendAndWait("Say hi.");
  const other = await chat.currentConversationId();

  const id = await startLongReply(chat);
  const beforeLeaving = await replyLength(chat);
  await chat.page.locator(`[data-testid="conversation-item"][data-id="${other}"] a`).click();
  await expect(page).toHaveURL(new RegExp(`/c/${other}$`));
  await expect(chat.userMessages.first()).toContainText("Say hi.");

  await chat.page.locator(`[data-testid="conversation-item"][data-id="${id}"] a`).click();
  await expect(page).toHaveURL(new RegExp(`/c/${id}$`));
  await expect(chat.userMessages.first()).toContainText("Count from 1 to 400");
  // Not cancelled: it went on while another conversation was open, and goes on here.
  await expect(chat.lastReply()).toHaveAttribute("data-status", "streaming");
  await expectGrowing(chat, beforeLeaving);
  expect((await storedReply(page, id)).status).toBe("generating");
  await stopAndCheck(chat, id);
});

test("Stop after a refresh stops the reply: it is stored cancelled and no more text arrives", async ({ chat, page }) => {
  test.slow();
  const id = await startLongReply(chat);
  await page.reload();
  await expect(chat.lastReply()).toHaveAttribute("data-status", "streaming");
  await expectGrowing(chat, await replyLength(chat));

  // Stored cancelled, with the text shown; nothing generates any more (GET /stream: 204).
  const shown = await stopAndCheck(chat, id);
  expect(shown.length).toBeGreaterThan(20);
  await page.reload();
  await expect(chat.lastReply()).toHaveAttribute("data-status", "cancelled");
  await expect(chat.lastReplyText()).toHaveText(shown);
});

test("a second tab on the conversation shows the same streaming reply", async ({ chat, page, context }) => {
  test.slow();
  const id = await startLongReply(chat);

  const second = new ChatPage(await context.newPage());
  await second.goto(`/c/${encodeURIComponent(id)}`);
  await expect(second.lastReply()).toHaveAttribute("data-status", "streaming");
  await expectGrowing(second, await replyLength(second));
  // The first tab still follows it too.
  await expect(chat.lastReply()).toHaveAttribute("data-status", "streaming");

  // Stopped in the second tab: both show it stopped, with the same text, the one stored.
  const shown = await stopAndCheck(second, id);
  await expect(chat.lastReply()).toHaveAttribute("data-status", "cancelled");
  await expect(chat.lastReplyText()).toHaveText(shown);
  expect((await storedReply(page, id)).content.length).toBeGreaterThan(20);
});

test("the sidebar marks a conversation while its reply generates, and clears the mark after", async ({ chat, page }) => {
  test.slow();
  const id = await startLongReply(chat);
  const item = page.locator(`[data-testid="conversation-item"][data-id="${id}"]`);
  await expect(item.getByTestId("conversation-generating")).toBeVisible();

  // Still marked while another chat is open: the reply generates elsewhere.
  await page.getByTestId("new-chat").click();
  await expect(page).toHaveURL(/\/$/);
  await expect(item.getByTestId("conversation-generating")).toBeVisible();
  // Another client stops it: the mark clears once the reply has ended (the list is read again
  // while one generates), and the conversation opens on the stopped reply.
  const stop = await page.request.post(`/api/v1/conversations/${encodeURIComponent(id)}/stop`);
  expect(stop.status()).toBe(204);
  await expect(item.getByTestId("conversation-generating")).toHaveCount(0);
  await item.getByTestId("conversation-link").click();
  await expect(chat.lastReply()).toHaveAttribute("data-status", "cancelled");
  await expect(item.getByTestId("conversation-generating")).toHaveCount(0);
});
