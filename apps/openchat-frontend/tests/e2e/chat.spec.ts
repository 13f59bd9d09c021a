import { expect, sampleWhile, test } from "./fixtures";

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

test("sends the system prompt and keeps settings per conversation", async ({ chat, page }) => {
  await chat.goto("/");
  const prompt = "You are a pirate. Always answer like a pirate.";
  await page.getByTestId("system-prompt").fill(prompt);
  const started = page.waitForRequest((r) => r.url().endsWith("/api/v1/chat") && r.method() === "POST");
  await chat.send("Who are you?");
  const body = (await started).postDataJSON() as { data: { prompt?: string; max_tokens?: number } };
  expect(body.data.prompt).toBe(prompt);
  expect(body.data.max_tokens).toBe(64);
  await chat.waitForReply();
  const id = await chat.currentConversationId();

  // A new chat starts from the defaults (which now include this prompt) ...
  await page.getByTestId("new-chat").click();
  await expect(page.getByTestId("system-prompt")).toHaveValue(prompt);
  await page.getByTestId("system-prompt").fill("");
  // ... and the first conversation still has its own settings after a reload.
  await page.goto(`/c/${id}`);
  await expect(chat.replies).toHaveCount(1);
  await expect(page.getByTestId("system-prompt")).toHaveValue(prompt);
  await page.getByTestId("system-prompt").fill("");
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

test("shows a readable error with Retry and never loses the user's text", async ({ chat, page }) => {
  await chat.goto("/");
  let calls = 0;
  await page.route("**/api/v1/chat", async (route) => {
    calls += 1;
    if (calls === 1) {
      await route.fulfill({
        status: 200,
        contentType: "application/x-ndjson",
        body:
          '{"type":"start","id":"x","message_id":"m","model":"qwen2.5-coder-0.5b-instruct"}\n' +
          '{"type":"token","content":"Here is code:\\n\\n```python\\ndef f(x):\\n"}\n' +
          '{"type":"ping"}\n' +
          '{"type":"error","code":"model_failed","message":"The model stopped unexpectedly."}\n',
      });
    } else {
      await route.continue();
    }
  });
  await chat.send("Write a function f.");
  await expect(chat.error).toContainText("The model stopped unexpectedly.");
  // The unfinished code fence rendered as a code block and the page still works.
  await expect(chat.lastReply().getByTestId("code-block")).toBeVisible();
  await expect(chat.userMessages.first()).toContainText("Write a function f.");
  await chat.screenshot("error-light");

  await page.getByTestId("retry-button").click();
  await chat.waitForReply();
  await expect(chat.error).toBeHidden();
  await expect(chat.userMessages).toHaveCount(1);
  expect(calls).toBe(2);
  await page.unroute("**/api/v1/chat");
});

test("429 shows 'model busy' and retries after Retry-After", async ({ chat, page }) => {
  await chat.goto("/");
  let calls = 0;
  await page.route("**/api/v1/chat", async (route) => {
    calls += 1;
    if (calls === 1) {
      await route.fulfill({
        status: 429,
        headers: { "Retry-After": "2", "Content-Type": "application/json" },
        body: JSON.stringify({ detail: "The model is busy.", code: "model_busy" }),
      });
    } else {
      await route.continue();
    }
  });
  await chat.send("Say OK.");
  await expect(page.getByTestId("chat-busy")).toContainText(/Model busy, retrying in \d+ s/);
  await chat.waitForReply();
  await expect(page.getByTestId("chat-busy")).toBeHidden();
  expect(calls).toBe(2);
  await page.unroute("**/api/v1/chat");
});

test("the sidebar loads more conversations as it scrolls (next_cursor)", async ({ chat, page }) => {
  // Shrink the page size so the conversations made so far span several pages.
  const cursors: (string | null)[] = [];
  await page.route("**/api/v1/conversations?*", async (route) => {
    const url = new URL(route.request().url());
    url.searchParams.set("limit", "3");
    cursors.push(url.searchParams.get("cursor"));
    await route.continue({ url: url.toString() });
  });
  await chat.goto("/");
  const res = await page.request.get("/api/v1/conversations?limit=100");
  const total = ((await res.json()) as { conversations: unknown[] }).conversations.length;
  expect(total).toBeGreaterThan(6);
  const list = page.getByTestId("conversation-list");
  // Scroll to the end until every page has been fetched.
  await expect
    .poll(
      async () => {
        await list.evaluate((el) => el.scrollTo(0, el.scrollHeight));
        return chat.conversationItems.count();
      },
      { timeout: 20_000 },
    )
    .toBe(total);
  expect(cursors.filter(Boolean).length).toBeGreaterThanOrEqual(2);
  await expect(page.getByTestId("load-more")).toHaveCount(0);
  await page.unroute("**/api/v1/conversations?*");
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

test("explains when the server is unreachable and recovers on Try again", async ({ chat, page }) => {
  await page.route("**/api/v1/auth/me", (route) =>
    route.fulfill({ status: 502, contentType: "application/json", body: '{"detail":"down","code":"backend_unreachable"}' }),
  );
  await page.goto("/");
  await expect(page.getByTestId("server-unavailable")).toBeVisible();
  await page.unroute("**/api/v1/auth/me");
  await page.getByRole("button", { name: "Try again" }).click();
  await expect(chat.composer).toBeVisible();
});
