import { busyTest, downTest, expect, postChat, sampleWhile, test } from "./fixtures";

test("sends a message and streams the reply token by token", async ({ chat, page }) => {
  await chat.goto("/");
  await expect(page.getByTestId("empty-state")).toBeVisible();
  await chat.screenshot("empty-state-light");

  await chat.send("Write a short Python function that adds two numbers, in a code block.");
  const reply = chat.lastReply();
  await expect(reply).toBeVisible();

  // Sample the reply's length while it streams: it must grow through several sizes.
  const lengths = await sampleWhile(
    async () => ((await chat.lastReplyText().textContent()) ?? "").length,
    async () => (await reply.getAttribute("data-status")) === "complete",
    100,
  );
  const intermediate = new Set(lengths.filter((n) => n > 0));
  expect(intermediate.size, `lengths seen: ${lengths.join(",")}`).toBeGreaterThanOrEqual(4);
  // (Markdown rendering means the text length is not strictly monotonic, but it grows overall.)
  expect(lengths[lengths.length - 1]!).toBeGreaterThan(lengths.find((n) => n > 0)!);

  await chat.waitForReply();
  // Metrics under the reply: model, tokens/s and time to first token.
  await expect(reply.getByTestId("message-model")).toHaveAttribute("data-model", "qwen2.5-coder-0.5b-instruct");
  await expect(reply.getByTestId("message-stats")).toContainText("tok/s");
  await expect(reply.getByTestId("message-stats")).toContainText("TTFT");
  // Announced to screen readers once complete.
  await expect(chat.liveRegion).toContainText("Reply:");
  // The new conversation is in the URL and in the sidebar.
  await chat.currentConversationId();
  await expect(chat.conversationItems.first()).toBeVisible();
  if (await reply.getByTestId("code-block").count()) {
    await expect(reply.getByTestId("copy-code").first()).toBeVisible();
  }
  await chat.screenshot("chat-light");
});

test("stops a reply mid-stream and keeps the partial text", async ({ chat, page }) => {
  await chat.goto("/");
  await chat.setMaxTokens(400);
  await chat.setTemperature(0); // the model really counts (not "1, 2, 3, ..., 300")
  await chat.send("Count from 1 to 300, separated by commas.");
  await expect
    .poll(async () => ((await chat.lastReplyText().textContent()) ?? "").length, { timeout: 60_000 })
    .toBeGreaterThan(20);
  await chat.stopButton.click();
  await expect(chat.lastReply()).toHaveAttribute("data-status", "cancelled");
  await expect(chat.lastReply().getByTestId("message-stopped")).toBeVisible();
  const stoppedText = (await chat.lastReplyText().textContent()) ?? "";
  await page.waitForTimeout(1000);
  expect((await chat.lastReplyText().textContent()) ?? "").toBe(stoppedText);
  await expect(chat.sendButton).toBeVisible();

  // The partial reply was stored as cancelled.
  const id = await chat.currentConversationId();
  await expect
    .poll(async () => {
      await page.reload();
      await expect(chat.composer).toBeVisible();
      return chat.lastReply().getAttribute("data-status");
    })
    .toBe("cancelled");
  expect(id).toBeTruthy();
  await chat.setMaxTokens(64);
});

test("Esc stops streaming", async ({ chat, page }) => {
  await chat.goto("/");
  await chat.setMaxTokens(300);
  await chat.setTemperature(0); // the model really counts (not "1, 2, 3, ..., 300")
  await chat.send("Count from 1 to 300, separated by commas.");
  await expect
    .poll(async () => ((await chat.lastReplyText().textContent()) ?? "").length, { timeout: 60_000 })
    .toBeGreaterThan(5);
  await page.keyboard.press("Escape");
  await expect(chat.lastReply()).toHaveAttribute("data-status", "cancelled");
  await chat.setMaxTokens(64);
});

test("regenerates the last reply", async ({ chat, page }) => {
  await chat.goto("/");
  await chat.sendAndWait("Give me a random name for a cat.");
  const first = await chat.lastReplyText().textContent();
  const started = page.waitForRequest((r) => r.url().endsWith("/api/v1/chat") && r.method() === "POST");
  await chat.lastReply().getByTestId("regenerate-button").click();
  const request = await started;
  const body = request.postDataJSON() as { messages: { role: string; content: string }[] };
  // Regenerate sends the history up to the last user message.
  expect(body.messages.at(-1)).toEqual({ role: "user", content: "Give me a random name for a cat." });
  expect(body.messages).toHaveLength(1);
  await chat.waitForReply();
  await expect(chat.replies).toHaveCount(1);
  await expect(chat.userMessages).toHaveCount(1);
  expect(first).toBeTruthy();

  // The server kept only the new reply.
  await page.reload();
  await expect(chat.replies).toHaveCount(1);
  await expect(chat.userMessages).toHaveCount(1);
});

test("edits a user message and resends from there", async ({ chat, page }) => {
  await chat.goto("/");
  await chat.sendAndWait("Say hello in French.");
  await chat.sendAndWait("Now say it in German.");
  await expect(chat.userMessages).toHaveCount(2);

  const firstUser = chat.userMessages.first();
  await firstUser.hover();
  await firstUser.getByTestId("edit-button").click();
  await page.getByTestId("edit-input").fill("Say hello in Spanish.");
  const started = page.waitForRequest((r) => r.url().endsWith("/api/v1/chat") && r.method() === "POST");
  await page.getByTestId("edit-submit").click();
  const body = (await started).postDataJSON() as { messages: { role: string; content: string }[] };
  expect(body.messages).toEqual([{ role: "user", content: "Say hello in Spanish." }]);
  await chat.waitForReply();
  await expect(chat.userMessages).toHaveCount(1);
  await expect(chat.userMessages.first()).toContainText("Say hello in Spanish.");
  await expect(chat.replies).toHaveCount(1);

  await page.reload();
  await expect(chat.userMessages).toHaveCount(1);
  await expect(chat.userMessages.first()).toContainText("Spanish");
});

test("finds, searches, renames and deletes a conversation after reload", async ({ chat, page }) => {
  const marker = `zebra${Date.now().toString(36)}`;
  await chat.goto("/");
  await chat.sendAndWait(`Remember the code word ${marker}. Reply with OK.`);
  const id = await chat.currentConversationId();

  await page.reload();
  await expect(chat.composer).toBeVisible();
  const item = page.locator(`[data-testid="conversation-item"][data-id="${id}"]`);
  await expect(item).toBeVisible();
  await expect(page.getByText("Today", { exact: true })).toBeVisible();
  await expect(chat.userMessages.first()).toContainText(marker);

  // Search by message content (debounced).
  await chat.searchInput.fill(marker);
  await expect(chat.conversationItems).toHaveCount(1);
  await expect(item).toBeVisible();
  await chat.searchInput.fill(`${marker}-nothing-matches`);
  await expect(page.getByTestId("conversation-empty")).toBeVisible();
  await chat.searchInput.fill("");
  await expect(item).toBeVisible();

  // Rename.
  const title = `Renamed ${marker}`;
  await chat.rename(item, title);
  await expect(item).toContainText(title);
  await expect(page.getByTestId("chat-title")).toHaveText(title);
  await page.reload();
  await expect(item).toContainText(title);
  await chat.searchInput.fill("Renamed");
  await expect(item).toBeVisible();
  await chat.searchInput.fill("");

  // Delete with confirmation: gone from the list, and the view moves to a new chat.
  await chat.delete(item);
  await expect(item).toHaveCount(0);
  await expect(page).toHaveURL(/\/$/);
  await page.goto(`/c/${id}`);
  await expect(page.getByTestId("conversation-missing")).toBeVisible();
});

test("switches model and labels the reply with it", async ({ chat }) => {
  await chat.goto("/");
  await chat.setMaxTokens(24);
  await chat.selectModel("qwen2.5-coder-1.5b-instruct");
  await chat.sendAndWait("Say hi.");
  await expect(chat.lastReply().getByTestId("message-model")).toHaveAttribute(
    "data-model",
    "qwen2.5-coder-1.5b-instruct",
  );
  await expect(chat.lastReply().getByTestId("message-model")).toContainText("1.5B");

  await chat.selectModel("qwen2.5-coder-0.5b-instruct");
  await chat.sendAndWait("Say bye.");
  await expect(chat.lastReply().getByTestId("message-model")).toHaveAttribute(
    "data-model",
    "qwen2.5-coder-0.5b-instruct",
  );
  await chat.setMaxTokens(64);
});

test("keyboard: Shift+Enter newline, Ctrl+K new chat, Ctrl+/ focuses the composer", async ({ chat, page }) => {
  await chat.goto("/");
  await chat.composer.fill("line one");
  await chat.composer.press("Shift+Enter");
  await chat.composer.pressSequentially("line two");
  await expect(chat.composer).toHaveValue("line one\nline two");
  await chat.composer.fill("");

  await chat.sendAndWait("Reply with the single word: ready");
  await expect(page).toHaveURL(/\/c\//);
  await page.getByTestId("new-chat").focus();
  await page.keyboard.press("Control+k");
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId("empty-state")).toBeVisible();

  await page.getByTestId("search-input").focus();
  await page.keyboard.press("Control+/");
  await expect(chat.composer).toBeFocused();

  // Back returns to the conversation.
  await page.goBack();
  await expect(page).toHaveURL(/\/c\//);
  await expect(chat.replies).toHaveCount(1);
});

test("a message the server refuses says what to change, offers no Retry, and never loses the user's text", async ({
  chat,
  page,
}) => {
  await chat.goto("/");
  // With 8000 of the 8192 context tokens reserved for the reply, a message of a few hundred
  // words no longer fits: the backend answers 400 message_too_long.
  await chat.setMaxTokens(8000);
  const text =
    "Please summarize my notes. " +
    Array.from({ length: 24 }, (_, i) => `Note ${i + 1}: the build on the staging server failed again overnight.`).join(" ");
  await chat.send(text);
  await expect(chat.error).toContainText("is too long");
  await expect(chat.error).toContainText("lower max_tokens");
  // Sending the same again would fail the same way: no Retry, but what to change.
  await expect(page.getByTestId("chat-error-hint")).toContainText("Shorten your message");
  await expect(page.getByTestId("chat-error-hint")).toContainText("lower Max tokens");
  await expect(page.getByTestId("retry-button")).toHaveCount(0);
  // The user's message is still there, whole.
  await expect(chat.userMessages).toHaveCount(1);
  await expect(chat.userMessages.first().getByTestId("message-content")).toHaveText(text);
  await expect(chat.replies).toHaveCount(0);
  await expect(chat.composer).toBeEnabled();
  await chat.screenshot("error-light");

  // Following the advice (lower max tokens, where the error's button leads) ends the error, and
  // "Generate a reply" sends the same message again.
  await page.getByTestId("chat-error-settings").click();
  await expect(page.getByTestId("max-tokens")).toBeFocused();
  await chat.setMaxTokens(64);
  await expect(chat.error).toBeHidden();
  const resent = page.waitForRequest((r) => r.url().endsWith("/api/v1/chat") && r.method() === "POST");
  await page.getByTestId("generate-button").click();
  const body = (await resent).postDataJSON() as { messages: { content: string }[]; data: { max_tokens?: number } };
  expect(body.messages.at(-1)?.content).toBe(text);
  expect(body.data.max_tokens).toBe(64);
  await chat.waitForReply();
  await expect(chat.error).toBeHidden();
  await expect(chat.userMessages).toHaveCount(1);
  await expect(chat.replies).toHaveCount(1);
  await chat.currentConversationId();
  await page.reload();
  await expect(chat.replies).toHaveCount(1);
  await expect(chat.userMessages.first().getByTestId("message-content")).toHaveText(text);
});

test("a reply cut off inside a code block still renders, and the chat goes on", async ({ chat, page }) => {
  await chat.goto("/");
  await chat.setTemperature(0); // the same reply each time: it opens with the code block
  await chat.setMaxTokens(40);
  await chat.sendAndWait("Write a long Python program in a code block. Start your reply with the code block, no introduction.");
  const reply = chat.lastReply();
  // The real reply stops at max tokens inside its code fence ...
  const id = await chat.currentConversationId();
  const stored = (await (await page.request.get(`/api/v1/conversations/${id}`)).json()) as {
    messages: { content: string; finish_reason: string | null }[];
  };
  const last = stored.messages.at(-1)!;
  expect(last.finish_reason).toBe("length");
  expect(last.content.split("```").length - 1, last.content).toBe(1);
  // ... and is shown as a code block with the cut-off notice, without an error.
  await expect(reply.getByTestId("code-block")).toBeVisible();
  await expect(reply.getByText("Reply cut off at the max tokens limit.")).toBeVisible();
  await expect(chat.error).toBeHidden();

  // The conversation goes on.
  await chat.setMaxTokens(64);
  await chat.sendAndWait("Now just say OK.");
  await expect(chat.replies).toHaveCount(2);
  await expect(chat.lastReply()).toHaveAttribute("data-status", "complete");
  await expect(chat.replies.first().getByTestId("code-block")).toBeVisible();
});

busyTest("429 shows 'model busy' and retries after Retry-After", async ({ chat, page, backendURL }) => {
  await chat.goto("/");
  // Keep the model busy with a long reply requested straight from the backend (which has no
  // waiting queue), and wait until it is generating.
  const long = await postChat(backendURL, `busy-${Date.now().toString(36)}`, "Write the numbers from 1 to 200 as English words, one per line.", {
    max_tokens: 300,
    temperature: 0,
  });
  expect(long.status).toBe(200);
  const reader = long.body!.getReader();
  const decoder = new TextDecoder();
  let received = "";
  try {
    while (!received.includes('"type":"token"')) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`the long reply ended before its first token: ${received}`);
      received += decoder.decode(value, { stream: true });
    }
    // Read the rest in the background: the model is free again when it ends.
    const finished = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return received;
        received += decoder.decode(value, { stream: true });
      }
    })();

    const statuses: number[] = [];
    page.on("response", (r) => {
      if (r.url().endsWith("/api/v1/chat") && r.request().method() === "POST") statuses.push(r.status());
    });
    await chat.send("Say OK.");
    await expect(page.getByTestId("chat-busy")).toContainText(/Model busy, retrying in \d+ s/);
    await expect(chat.userMessages).toHaveCount(1);
    await expect(chat.error).toBeHidden();

    expect(await finished).toContain('"type":"end"');
    // The automatic retry (after Retry-After, maybe more than once) gets a real reply.
    await chat.waitForReply(100_000);
    await expect(page.getByTestId("chat-busy")).toBeHidden();
    await expect(chat.error).toBeHidden();
    await expect(chat.userMessages).toHaveCount(1);
    await expect(chat.replies).toHaveCount(1);
    expect(statuses[0]).toBe(429);
    expect(statuses.at(-1)).toBe(200);
  } finally {
    await reader.cancel().catch(() => undefined);
  }
});

/** Every conversation id on a backend (auth off), newest first. */
async function listConversations(backendURL: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const url = new URL(`${backendURL}/api/v1/conversations`);
    url.searchParams.set("limit", "100");
    if (cursor) url.searchParams.set("cursor", cursor);
    const page = (await (await fetch(url)).json()) as { conversations: { id: string }[]; next_cursor: string | null };
    ids.push(...page.conversations.map((c) => c.id));
    cursor = page.next_cursor;
  } while (cursor);
  return ids;
}

busyTest("the sidebar loads more conversations as it scrolls (next_cursor)", async ({ chat, page, backendURL }) => {
  // Real conversations, created oldest first: more than two of the sidebar's 30-item pages.
  const stamp = Date.now().toString(36);
  const ids = Array.from({ length: 65 }, (_, i) => `list-${stamp}-${String(i + 1).padStart(2, "0")}`);
  try {
    for (const [i, id] of ids.entries()) {
      const res = await postChat(backendURL, id, `Sidebar conversation number ${i + 1}`, { max_tokens: 1 });
      const body = await res.text();
      expect(res.status, body).toBe(200);
    }
    const total = (await listConversations(backendURL)).length;
    expect(total).toBeGreaterThanOrEqual(ids.length);

    const cursors: string[] = [];
    page.on("request", (r) => {
      const url = new URL(r.url());
      const cursor = url.searchParams.get("cursor");
      if (url.pathname === "/api/v1/conversations" && cursor) cursors.push(cursor);
    });
    await chat.goto("/");
    const item = (id: string) => page.locator(`[data-testid="conversation-item"][data-id="${id}"]`);
    await expect(item(ids.at(-1)!)).toBeVisible();
    // The oldest is at least two pages away.
    await expect(item(ids[0]!)).toHaveCount(0);
    expect(await chat.conversationItems.count()).toBeLessThan(total);

    // Scroll the list with the mouse wheel until every page has been fetched.
    await page.getByTestId("conversation-list").hover();
    await expect
      .poll(
        async () => {
          await page.mouse.wheel(0, 5000);
          return chat.conversationItems.count();
        },
        { timeout: 30_000 },
      )
      .toBe(total);
    await page.mouse.wheel(0, 5000);
    await expect(item(ids[0]!)).toBeInViewport();
    await expect(page.getByTestId("load-more")).toHaveCount(0);
    expect(cursors.length).toBeGreaterThanOrEqual(2);
  } finally {
    for (const id of ids) await fetch(`${backendURL}/api/v1/conversations/${id}`, { method: "DELETE" });
  }
});

test("dark mode toggles, persists without a flash, and looks right", async ({ chat, page }) => {
  await chat.goto("/");
  await chat.setTheme("dark");
  await expect(page.locator("html")).toHaveClass(/dark/);
  await chat.screenshot("empty-state-dark");
  await chat.sendAndWait("Show a two-line bash example in a code block.");
  await chat.screenshot("chat-dark");

  // next-themes sets the class before first paint: check at DOMContentLoaded.
  await page.reload({ waitUntil: "domcontentloaded" });
  expect(await page.evaluate(() => document.documentElement.classList.contains("dark"))).toBe(true);
  await expect(chat.composer).toBeVisible();

  await chat.setTheme("light");
  await expect(page.locator("html")).not.toHaveClass(/dark/);
  await chat.setTheme("system");
});

test("collapses and restores the side panels", async ({ chat, page }) => {
  await chat.goto("/");
  await page.getByTestId("toggle-sidebar").click();
  await expect(chat.sidebar).toBeHidden();
  await page.getByTestId("toggle-settings").click();
  await expect(chat.settings).toBeHidden();
  await page.reload();
  await expect(chat.composer).toBeVisible();
  await expect(chat.sidebar).toBeHidden();
  await page.getByTestId("toggle-sidebar").click();
  await page.getByTestId("toggle-settings").click();
  await expect(chat.sidebar).toBeVisible();
  await expect(chat.settings).toBeVisible();
});

test.describe("phone-sized viewport", () => {
  test.use({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

  test("works at 390x844 with panels as sheets", async ({ chat, page }) => {
    await chat.goto("/");
    await expect(chat.sidebar).toBeHidden();
    await expect(chat.settings).toBeHidden();
    await chat.screenshot("mobile-empty-light");
    await chat.sendAndWait("Say hi in five words.");
    const id = await chat.currentConversationId();
    // No horizontal overflow.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await chat.screenshot("mobile-chat-light");

    await page.getByTestId("toggle-sidebar").click();
    await expect(page.getByTestId("sidebar-sheet")).toBeVisible();
    await expect(page.locator(`[data-testid="conversation-item"][data-id="${id}"]`)).toBeVisible();
    await chat.screenshot("mobile-sidebar-light");
    await page.getByTestId("new-chat").click();
    await expect(page.getByTestId("sidebar-sheet")).toBeHidden();
    await expect(page.getByTestId("empty-state")).toBeVisible();

    await page.getByTestId("toggle-settings").click();
    await expect(page.getByTestId("settings-sheet")).toBeVisible();
    await expect(page.getByTestId("model-select")).toBeVisible();
    await chat.setTheme("dark").catch(() => undefined);
    await page.keyboard.press("Escape");
    await expect(page.getByTestId("settings-sheet")).toBeHidden();
    await chat.setTheme("dark");
    await chat.screenshot("mobile-empty-dark");
    await page.goto(`/c/${id}`);
    await expect(chat.replies).toHaveCount(1);
    await chat.screenshot("mobile-chat-dark");
    await chat.setTheme("system");
  });
});

downTest("explains when the server is unreachable and recovers on Try again", async ({ chat, page, downBackend }) => {
  // Nothing listens where this server's BACKEND_URL points.
  await page.goto("/");
  await expect(page.getByTestId("server-unavailable")).toBeVisible();
  await expect(page.getByTestId("server-unavailable")).toContainText("can't be reached");

  // Start the backend for real, then try again. The page also re-checks by itself every few
  // seconds, so it may have recovered (and Try again gone) before the click.
  await downBackend.start();
  await page
    .getByRole("button", { name: "Try again" })
    .click({ timeout: 5_000 })
    .catch(() => expect(page.getByTestId("server-unavailable")).toHaveCount(0));
  await expect(chat.composer).toBeVisible();
  await expect(page.getByTestId("server-unavailable")).toHaveCount(0);
  await expect(page.getByTestId("conversation-empty")).toBeVisible();
  await chat.sendAndWait("Say OK.");
  await expect(chat.replies).toHaveCount(1);
});
