import { downTest, expect, serverEnv, test } from "./fixtures";
import { TEST_MODEL } from "./servers";

/** Messages stored before the reply: alternating user and ai, ending with the user's. */
const STORED = 251;

/**
 * Stores a conversation of STORED messages and a reply in one chat request to the real backend.
 * Its max_tokens leaves the prompt a few dozen tokens, so the history is trimmed to the last
 * message and the model reads almost nothing; the reply is cut after its first line (leaving
 * stops it, and it is kept as cancelled). Returns the conversation's id.
 */
async function storeLongConversation(): Promise<string> {
  const base = serverEnv("E2E_BASE_URL");
  const { models } = (await (await fetch(`${base}/api/v1/models`)).json()) as {
    models: { id: string; context_length: number }[];
  };
  const model = models.find((m) => m.id === TEST_MODEL);
  if (!model) throw new Error(`${TEST_MODEL} is not listed`);
  const id = `long-${Date.now().toString(36)}`;
  const messages = Array.from({ length: STORED }, (_, n) => ({
    role: n % 2 === 0 ? "user" : "ai",
    content: n === STORED - 1 ? "Say OK." : `message ${n}`,
  }));
  const controller = new AbortController();
  const response = await fetch(`${base}/api/v1/chat`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
    body: JSON.stringify({
      id,
      messages,
      data: { model: TEST_MODEL, max_tokens: model.context_length - 64, temperature: 0 },
    }),
    signal: controller.signal,
  });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  let text = "";
  while (!/"type":"(token|end)"/.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  controller.abort();
  await expect
    .poll(async () => ((await (await fetch(`${base}/api/v1/conversations/${id}`)).json()) as { messages: unknown[] }).messages.length)
    .toBe(STORED + 1);
  return id;
}

async function storedMessages(id: string): Promise<{ content: string; position: number }[]> {
  const response = await fetch(`${serverEnv("E2E_BASE_URL")}/api/v1/conversations/${id}`);
  return ((await response.json()) as { messages: { content: string; position: number }[] }).messages;
}

test("a long conversation opens on its latest messages and loads earlier ones on scrolling up", async ({
  chat,
  page,
}) => {
  const id = await storeLongConversation();
  const messages = page.locator('[data-testid="message-user"], [data-testid="message-ai"]');
  await chat.goto(`/c/${id}`);
  await expect(messages).toHaveCount(100);
  await expect(chat.userMessages.last()).toContainText("Say OK.");
  // The latest 100 of STORED + 1: positions 152 to 251.
  const list = page.getByTestId("message-list");
  await expect(list.getByText("message 152", { exact: true })).toBeAttached();
  await expect(list.getByText("message 151", { exact: true })).not.toBeAttached();
  const loadEarlier = page.getByTestId("load-earlier");
  await expect(loadEarlier).toBeAttached();

  // Scrolling to the top loads the page before; what was at the top stays in view (no jump).
  await list.evaluate((el) => el.scrollTo({ top: 0 }));
  const formerFirst = list.getByText("message 152", { exact: true });
  await expect(messages).toHaveCount(200);
  await expect(list.getByText("message 52", { exact: true })).toBeAttached();
  await expect(list.getByText("message 51", { exact: true })).not.toBeAttached();
  await expect(formerFirst).toBeInViewport();
  expect(await list.evaluate((el) => el.scrollTop)).toBeGreaterThan(1000);

  // The button (for the keyboard; scrolling up to it loads the page anyway) loads the rest,
  // and then there is nothing earlier. Pressed where it is, without scrolling to it:
  await loadEarlier.dispatchEvent("click");
  await expect(messages).toHaveCount(STORED + 1);
  await expect(loadEarlier).not.toBeAttached();
  await expect(messages.first()).toContainText("message 0");
});

test("sending in a conversation whose earlier messages are not loaded keeps them all", async ({ chat, page }) => {
  const id = await storeLongConversation();
  await chat.goto(`/c/${id}`);
  await expect(page.getByTestId("load-earlier")).toBeAttached();
  // The conversation's stored max_tokens keeps the prompt short (see storeLongConversation).
  await chat.send("Say OK again.");
  await expect(chat.lastReply()).toHaveAttribute("data-status", /streaming|complete/, { timeout: 90_000 });
  if ((await chat.lastReply().getAttribute("data-status")) === "streaming") {
    // Stop a long reply; a short one may end by itself before the click, which is as good.
    await chat.stopButton
      .click({ timeout: 5_000 })
      .catch(() => expect(chat.lastReply()).toHaveAttribute("data-status", "complete"));
  }
  await expect(chat.sendButton).toBeVisible();

  // Every earlier message is still stored, in order, with the new exchange after them.
  await expect.poll(async () => (await storedMessages(id)).length).toBe(STORED + 3);
  const stored = await storedMessages(id);
  expect(stored.slice(0, STORED - 1).map((m) => m.content)).toEqual(
    Array.from({ length: STORED - 1 }, (_, n) => `message ${n}`),
  );
  expect(stored[STORED + 1]!.content).toBe("Say OK again.");
  // The page shows the whole conversation now (what it sent).
  await expect(page.getByTestId("load-earlier")).not.toBeAttached();
  await expect(page.getByTestId("message-list").getByText("message 0", { exact: true })).toBeAttached();
});

downTest(
  "over the server's message limits, the page shows why and what to do, and keeps the user's message",
  async ({ chat, page, downBackend }) => {
    await downBackend.start({ OPENCHAT_MAX_MESSAGES: "3", OPENCHAT_MAX_MESSAGE_CHARS: "2000" });
    await chat.goto("/");
    const long = `${"abcd ".repeat(400)}abcde`; // 2,005 characters
    await chat.send(long);
    await expect(chat.error).toContainText("Message 1 has 2,005 characters");
    await expect(chat.error).toContainText("OPENCHAT_MAX_MESSAGE_CHARS");
    await expect(page.getByTestId("chat-error-hint")).toContainText("Shorten the message");
    await expect(chat.userMessages).toHaveCount(1);
    await expect(chat.userMessages.last()).toContainText(long.slice(-40));

    await page.getByTestId("new-chat").click();
    await chat.sendAndWait("Say OK.");
    await chat.sendAndWait("Say OK again.");
    await chat.send("And once more.");
    await expect(chat.error).toContainText("this server takes at most 3");
    await expect(page.getByTestId("chat-error-hint")).toContainText("start a new chat");
    await expect(chat.userMessages).toHaveCount(3);
    await expect(chat.userMessages.last()).toContainText("And once more.");
  },
);
