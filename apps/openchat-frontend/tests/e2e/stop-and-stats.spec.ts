import { expect, test } from "./fixtures";
import type { ChatPage } from "./pages/chat-page";

/** Starts a long real reply and waits until some of it has streamed (temperature 0: the model
 * really counts, instead of sometimes answering "1, 2, 3, ..., 300"). */
async function startLongReply(chat: ChatPage) {
  await chat.setMaxTokens(300);
  await chat.setTemperature(0);
  await chat.send("Count from 1 to 300, separated by commas.");
  await expect
    .poll(async () => ((await chat.lastReplyText().textContent()) ?? "").length, { timeout: 60_000 })
    .toBeGreaterThan(20);
}

test("Stop never sends the half-typed follow-up", async ({ chat, page }) => {
  const posted: string[] = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/api/v1/chat") && r.method() === "POST") posted.push(r.postData() ?? "");
  });
  await chat.goto("/");
  await startLongReply(chat);
  const draft = "And now count backwards";
  await chat.composer.fill(draft);
  await chat.stopButton.click();

  await expect(chat.lastReply()).toHaveAttribute("data-status", "cancelled");
  await expect(chat.composer).toHaveValue(draft);
  await expect(chat.userMessages).toHaveCount(1);
  await expect(chat.replies).toHaveCount(1);
  await expect(chat.sendButton).toBeEnabled();
  expect(posted).toHaveLength(1);
  expect(posted[0]).not.toContain(draft);
});

test("a stopped reply shows the same stats live as after a reload", async ({ chat, page }) => {
  await chat.goto("/");
  await startLongReply(chat);
  await chat.stopButton.click();
  const reply = chat.lastReply();
  await expect(reply).toHaveAttribute("data-status", "cancelled");
  await expect(reply.getByTestId("message-stats")).toContainText(/\d+ tokens/);
  const live = await reply.getByTestId("message-stats").textContent();

  await page.reload();
  await expect(chat.lastReply()).toHaveAttribute("data-status", "cancelled");
  await expect(chat.lastReply().getByTestId("message-stats")).toHaveText(live!);
});

test("a one-token reply reads '1 token' and shows no rate", async ({ chat, page }) => {
  await chat.goto("/");
  await chat.setMaxTokens(1);
  await chat.sendAndWait("Say hi.");
  const stats = chat.lastReply().getByTestId("message-stats");
  await expect(stats).toContainText(/TTFT .* · 1 token$/);
  await expect(stats).not.toContainText("tok/s");
  const live = await stats.textContent();

  await page.reload();
  await expect(chat.lastReply().getByTestId("message-stats")).toHaveText(live!);
});
