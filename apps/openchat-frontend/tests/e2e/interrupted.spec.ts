import { downTest as test, expect } from "./fixtures";

// Issue 10, faults: the backend is killed (SIGKILL) while it writes a reply, then started again
// on the same database. The conversation shows the user's message and the reply marked
// interrupted, with Retry, which writes the whole reply (real backend, real 0.5B model).

// Saved every half second: the reply of the killed backend is marked interrupted 3 s after it.
const FAST_SAVES = { OPENCHAT_REPLY_SAVE_INTERVAL_S: "0.5" };

test("a reply cut by a killed backend shows as interrupted after the restart, and Retry writes it", async ({
  chat,
  page,
  downBackend,
}) => {
  test.slow(); // two backend starts, each loading the model
  await downBackend.start(FAST_SAVES);
  await chat.goto("/");
  await chat.send("Count from one to forty in words, separated by commas.");
  await expect(chat.lastReplyText()).not.toBeEmpty({ timeout: 60_000 });
  await downBackend.kill();
  const conversation = new URL(page.url()).pathname;

  await downBackend.start(FAST_SAVES);
  const interrupted = page.getByTestId("message-interrupted");
  // Opened again: the reply is marked once its lease has lapsed (a few seconds after the kill).
  await expect(async () => {
    await page.goto(conversation);
    await expect(interrupted).toBeVisible({ timeout: 15_000 });
  }).toPass({ timeout: 90_000 });
  await expect(chat.userMessages).toHaveCount(1);
  await expect(chat.userMessages.first()).toContainText("Count from one to forty");
  await expect(chat.lastReply()).toHaveAttribute("data-status", "interrupted");
  await expect(interrupted).toContainText("This reply was interrupted");

  await chat.setMaxTokens(8); // a short whole reply: the question is not what is tested here
  await page.getByTestId("interrupted-retry").click();
  await expect(chat.lastReply()).toHaveAttribute("data-status", "complete", { timeout: 180_000 });
  await expect(interrupted).toHaveCount(0);
  await expect(chat.replies).toHaveCount(1);
  await expect(chat.lastReplyText()).not.toBeEmpty();
});
