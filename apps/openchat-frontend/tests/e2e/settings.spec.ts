import type { Page } from "@playwright/test";

import { expect, test, TEST_MAX_TOKENS } from "./fixtures";
import { ChatPage } from "./pages/chat-page";
import { TEST_MODEL } from "./servers";

type Range = { default: number; min: number; max: number; step: number };
type Model = { id: string; sampling: { temperature: Range; top_p: Range; max_tokens: Range } };

/** The test model's sampling ranges, as GET /models gives them. */
async function testModelSampling(page: Page) {
  const { models } = (await (await page.request.get("/api/v1/models")).json()) as { models: Model[] };
  const model = models.find((m) => m.id === TEST_MODEL);
  if (!model) throw new Error(`${TEST_MODEL} is not listed`);
  return model.sampling;
}

const chatRequest = (page: Page) =>
  page.waitForRequest((r) => r.url().endsWith("/api/v1/chat") && r.method() === "POST");
type ChatBody = { data: { prompt?: string; temperature?: number; top_p?: number; max_tokens?: number } };

test("a conversation's settings are the server's: saved when changed, shown in a fresh browser, never overridden by localStorage", async ({
  chat,
  page,
  browser,
  baseURL,
}) => {
  await chat.goto("/");
  await page.getByTestId("system-prompt").fill("You are a pirate.");
  await chat.setTemperature(0.3);
  await chat.sendAndWait("Who are you?");
  const id = await chat.currentConversationId();

  // Changes in the open conversation are saved to the server right away.
  const saved = page.waitForResponse(
    (r) => r.url().endsWith(`/api/v1/conversations/${id}`) && r.request().method() === "PATCH" && r.ok(),
  );
  await page.getByTestId("system-prompt").fill("Answer in French.");
  await chat.setTemperature(1.1);
  await saved;
  await expect
    .poll(async () => ((await (await page.request.get(`/api/v1/conversations/${id}`)).json()) as { settings: object }).settings)
    .toMatchObject({ prompt: "Answer in French.", temperature: 1.1 });

  // Another browser (no localStorage of this one) with a stale entry an older version wrote.
  const other = await browser.newContext({ baseURL });
  try {
    await other.addInitScript((key) => {
      window.localStorage.setItem(key, JSON.stringify({ prompt: "Stale prompt", temperature: 2, max_tokens: 5 }));
    }, `openchat:settings:${id}`);
    const otherPage = await other.newPage();
    const otherChat = new ChatPage(otherPage);
    await otherChat.goto(`/c/${id}`);
    await expect(otherChat.replies).toHaveCount(1);
    await expect(otherPage.getByTestId("system-prompt")).toHaveValue("Answer in French.");
    await expect(otherPage.getByTestId("temperature-input")).toHaveValue("1.1");
    await expect(otherPage.getByTestId("max-tokens")).toHaveValue(String(TEST_MAX_TOKENS));
    await expect(otherPage.getByTestId("system-prompt-chip")).toBeVisible();
    // The old per-conversation entry is gone.
    expect(await otherPage.evaluate((key) => window.localStorage.getItem(key), `openchat:settings:${id}`)).toBeNull();
  } finally {
    await other.close();
  }
});

test("a new chat starts with the last chosen model and its defaults, and a system prompt only if saved for new chats", async ({
  chat,
  page,
}) => {
  const sampling = await testModelSampling(page);
  await chat.goto("/");
  const prompt = "You are a pirate. Always answer like a pirate.";
  await expect(page.getByTestId("system-prompt-chip")).toHaveCount(0);
  await page.getByTestId("system-prompt").fill(prompt);
  // A visible chip says a system prompt is on.
  await expect(page.getByRole("button", { name: /system prompt/i })).toBeVisible();
  // The model's defaults are known once GET /models has answered (before that, unset options
  // are left to the server, which applies the same defaults).
  await expect(page.getByTestId("max-tokens")).toHaveValue(String(TEST_MAX_TOKENS));
  const started = chatRequest(page);
  await chat.send("Who are you?");
  const body = (await started).postDataJSON() as ChatBody;
  expect(body.data.prompt).toBe(prompt);
  expect(body.data.max_tokens).toBe(TEST_MAX_TOKENS);
  await chat.waitForReply();
  const id = await chat.currentConversationId();
  const saved = page.waitForResponse(
    (r) => r.url().endsWith(`/api/v1/conversations/${id}`) && r.request().method() === "PATCH" && r.ok(),
  );
  await chat.setMaxTokens(100);
  await chat.setTemperature(1.5);

  // A new chat: no system prompt, the model's default sampling.
  await page.getByTestId("new-chat").click();
  await expect(page.getByTestId("system-prompt")).toHaveValue("");
  await expect(page.getByTestId("system-prompt-chip")).toHaveCount(0);
  await expect(page.getByTestId("max-tokens")).toHaveValue(String(sampling.max_tokens.default));
  await expect(page.getByTestId("temperature-input")).toHaveValue(String(sampling.temperature.default));

  // The first conversation keeps its own settings; its prompt is saved for new chats from there.
  await saved;
  await page.goto(`/c/${id}`);
  await expect(chat.replies).toHaveCount(1);
  await expect(page.getByTestId("system-prompt")).toHaveValue(prompt);
  await expect(page.getByTestId("max-tokens")).toHaveValue("100");
  await page.getByTestId("prompt-for-new-chats").check();
  await page.getByTestId("new-chat").click();
  await expect(page.getByTestId("system-prompt")).toHaveValue(prompt);
  await expect(page.getByTestId("prompt-for-new-chats")).toBeChecked();
  await expect(page.getByTestId("temperature-input")).toHaveValue(String(sampling.temperature.default));

  // The chip opens the settings (hidden here) at the prompt.
  await page.getByTestId("toggle-settings").click();
  await expect(chat.settings).toBeHidden();
  await page.getByRole("button", { name: /system prompt/i }).click();
  await expect(chat.settings).toBeVisible();
  await expect(page.getByTestId("system-prompt")).toBeFocused();
  await chat.screenshot("system-prompt-chip-light");

  // Unticked, new chats have no prompt again.
  await page.getByTestId("prompt-for-new-chats").uncheck();
  await page.getByTestId("new-chat").click();
  await expect(page.getByTestId("system-prompt")).toHaveValue("");
});

test("settings the server would refuse cannot be entered: the range is shown and what is shown is sent", async ({
  chat,
  page,
}) => {
  const sampling = await testModelSampling(page);
  await chat.goto("/");

  // The top-p slider stops at the model's minimum (0.01), not 0.
  const topP = page.getByRole("slider", { name: "Top-p" });
  // Pressed until it lands: a key pressed while the panel still hydrates is lost (seen once in CI).
  await expect(async () => {
    await topP.focus();
    await topP.press("Home");
    await expect(topP).toHaveAttribute("aria-valuenow", String(sampling.top_p.min), { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(page.getByTestId("top-p-input")).toHaveValue(String(sampling.top_p.min));

  // Typing 0: an error with the range; the value is not applied, and leaving the field shows
  // the nearest allowed one.
  await page.getByTestId("top-p-input").fill("0");
  await expect(page.getByTestId("top-p-value-error")).toContainText(`from ${sampling.top_p.min} to ${sampling.top_p.max}`);
  await expect(page.getByTestId("top-p-input")).toHaveAttribute("aria-invalid", "true");
  await page.getByTestId("top-p-input").press("Tab");
  await expect(page.getByTestId("top-p-value-error")).toHaveCount(0);
  await expect(page.getByTestId("top-p-input")).toHaveValue(String(sampling.top_p.min));

  const maxTokens = page.getByTestId("max-tokens");
  await maxTokens.fill("0");
  await expect(page.getByTestId("max-tokens-error")).toContainText(`from 1 to ${sampling.max_tokens.max}`);
  await chat.screenshot("settings-invalid-light");
  await maxTokens.press("Tab");
  await expect(maxTokens).toHaveValue("1");
  // Far above the model's limit: clamped to the model's maximum, not to 8192.
  await maxTokens.fill("100000");
  await expect(page.getByTestId("max-tokens-error")).toBeVisible();
  await maxTokens.press("Tab");
  await expect(maxTokens).toHaveValue(String(sampling.max_tokens.max));

  await chat.setMaxTokens(TEST_MAX_TOKENS);
  await chat.setTemperature(0);
  const started = chatRequest(page);
  await chat.send("Say OK.");
  const body = (await started).postDataJSON() as ChatBody;
  expect(body.data).toMatchObject({ top_p: sampling.top_p.min, max_tokens: TEST_MAX_TOKENS, temperature: 0 });
  // The server accepts what was shown.
  await chat.waitForReply();
  await expect(chat.error).toBeHidden();
});

test("the trim notice sits above the reply it concerns, says how many messages were left out, and stays after a reload", async ({
  chat,
  page,
}) => {
  test.slow(); // the model reads a long history twice
  const sampling = await testModelSampling(page);
  // A real conversation of 10 long messages (about 1,000 tokens), stored through the API.
  const id = `trim-${Date.now().toString(36)}`;
  const filler = "The nightly build on the staging server failed again because a dependency was missing. ".repeat(4);
  const history = Array.from({ length: 10 }, (_, i) => ({
    role: i % 2 === 0 ? "user" : "ai",
    content: `${i % 2 === 0 ? "Question" : "Answer"} ${i + 1}: ${filler}`,
  }));
  history.push({ role: "user", content: "Thanks." });
  const seeded = await page.request.post("/api/v1/chat", {
    data: { id, messages: history, data: { max_tokens: 4, temperature: 0 } },
    timeout: 90_000, // the model reads the whole history first
  });
  expect(seeded.status(), await seeded.text()).toBe(200);

  await chat.goto(`/c/${id}`);
  await expect(chat.replies).toHaveCount(6);
  await expect(page.getByTestId("trim-notice")).toHaveCount(0); // everything fitted so far

  // With all but ~300 tokens of the context window kept for the reply, the history no longer fits.
  await chat.setTemperature(0);
  await chat.setMaxTokens(sampling.max_tokens.max - 300);
  await chat.send("Reply with the single word: OK");
  const notice = page.getByTestId("trim-notice");
  await expect(notice).toBeVisible({ timeout: 90_000 });
  await page.keyboard.press("Escape"); // stops the reply if it goes on (it may be up to ~7,900 tokens)
  await expect(chat.lastReply()).toHaveAttribute("data-status", /complete|cancelled/);

  // The stored reply says how many messages its prompt left out.
  let omitted = 0;
  await expect
    .poll(async () => {
      const stored = (await (await page.request.get(`/api/v1/conversations/${id}`)).json()) as {
        messages: { role: string; omitted_messages: number | null }[];
      };
      const last = stored.messages.at(-1);
      omitted = last?.role === "ai" ? (last.omitted_messages ?? 0) : 0;
      return omitted;
    })
    .toBeGreaterThan(1);

  const checkNotice = async () => {
    await expect(notice).toHaveCount(1);
    await expect(notice).toHaveText(`${omitted} earlier messages were left out of this reply's prompt to fit the model's context window.`);
    await expect(notice).toBeInViewport();
    // Right above the last reply (the one it concerns), not at the top of the conversation.
    const noticeBox = (await notice.boundingBox())!;
    const replyBox = (await chat.lastReply().boundingBox())!;
    expect(replyBox.y - (noticeBox.y + noticeBox.height)).toBeGreaterThanOrEqual(-1);
    expect(replyBox.y - (noticeBox.y + noticeBox.height)).toBeLessThan(24);
  };
  await checkNotice();
  await page.reload();
  await expect(chat.replies).toHaveCount(7);
  await checkNotice();
  await chat.screenshot("trim-notice-light");
});
