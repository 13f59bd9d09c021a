import { expect, test } from "./fixtures";
import type { ChatPage } from "./pages/chat-page";

/** The `‹ 2 / 3 ›` control under a message. */
function versions(message: ReturnType<ChatPage["lastReply"]>) {
  return message.getByTestId("message-versions");
}

test("a regenerated reply keeps the first one: flip back to it, and it stays shown after a reload", async ({ chat, page }) => {
  await chat.goto("/");
  // Sampling (not greedy) decoding: the second reply is another text.
  await chat.setTemperature(1);
  await chat.sendAndWait("Write a two-line poem about the sea.");
  const first = (await chat.lastReplyText().textContent()) ?? "";
  expect(first.length).toBeGreaterThan(0);
  // One version: no control.
  await expect(versions(chat.lastReply())).toHaveCount(0);

  await chat.lastReply().hover();
  await chat.lastReply().getByTestId("regenerate-button").click();
  await chat.waitForReply();
  const second = (await chat.lastReplyText().textContent()) ?? "";
  expect(second).not.toBe(first);
  await expect(chat.replies).toHaveCount(1);
  await expect(versions(chat.lastReply())).toContainText("2 / 2");
  await chat.screenshot("versions-reply");

  await chat.lastReply().getByRole("button", { name: "Previous version" }).click();
  await expect(versions(chat.lastReply())).toContainText("1 / 2");
  await expect(chat.lastReplyText()).toHaveText(first);
  await expect(chat.lastReply().getByRole("button", { name: "Previous version" })).toBeDisabled();

  // The server keeps the path shown.
  await page.reload();
  await expect(chat.composer).toBeVisible();
  await expect(chat.lastReplyText()).toHaveText(first);
  await expect(versions(chat.lastReply())).toContainText("1 / 2");

  await chat.lastReply().getByRole("button", { name: "Next version" }).click();
  await expect(chat.lastReplyText()).toHaveText(second);
  await expect(versions(chat.lastReply())).toContainText("2 / 2");
  await expect(chat.lastReply().getByRole("button", { name: "Next version" })).toBeDisabled();
});

test("edit-and-resend keeps the original question and its reply; sending continues from the path shown", async ({ chat, page }) => {
  await chat.goto("/");
  await chat.sendAndWait("What is the capital of France? Answer in one sentence.");
  const original = (await chat.lastReplyText().textContent()) ?? "";

  const question = chat.userMessages.first();
  await question.hover();
  await question.getByTestId("edit-button").click();
  await page.getByTestId("edit-input").fill("What is the capital of Italy? Answer in one sentence.");
  await page.getByTestId("edit-submit").click();
  await chat.waitForReply();
  await expect(chat.userMessages).toHaveCount(1);
  await expect(question).toContainText("Italy");
  await expect(versions(question)).toContainText("2 / 2");
  const edited = (await chat.lastReplyText().textContent()) ?? "";
  // The reply to the edited question is its only version.
  await expect(versions(chat.lastReply())).toHaveCount(0);

  // Back to the original question: its reply follows.
  await question.getByRole("button", { name: "Previous version" }).click();
  await expect(question).toContainText("France");
  await expect(versions(question)).toContainText("1 / 2");
  await expect(chat.lastReplyText()).toHaveText(original);

  // A new message continues the path shown (France), not the newest one (Italy).
  await chat.sendAndWait("Thank you!");
  await expect(chat.userMessages).toHaveCount(2);
  await page.reload();
  await expect(chat.composer).toBeVisible();
  await expect(chat.userMessages).toHaveCount(2);
  await expect(chat.userMessages.first()).toContainText("France");
  await expect(chat.userMessages.last()).toContainText("Thank you!");
  await expect(chat.replies.first().getByTestId("message-content")).toHaveText(original);
  await expect(versions(chat.userMessages.first())).toContainText("1 / 2");

  // The other path is still there, as it was.
  await chat.userMessages.first().getByRole("button", { name: "Next version" }).click();
  await expect(chat.userMessages).toHaveCount(1);
  await expect(chat.userMessages.first()).toContainText("Italy");
  await expect(chat.lastReplyText()).toHaveText(edited);
});
