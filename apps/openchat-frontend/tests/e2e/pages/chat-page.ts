import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { expect, type Locator, type Page } from "@playwright/test";

export const SCREENSHOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../test-results/screenshots");

/** Page object for the three-panel chat UI. */
export class ChatPage {
  readonly composer: Locator;
  readonly sendButton: Locator;
  readonly stopButton: Locator;
  readonly userMessages: Locator;
  readonly replies: Locator;
  readonly sidebar: Locator;
  readonly conversationItems: Locator;
  readonly searchInput: Locator;
  readonly settings: Locator;
  readonly liveRegion: Locator;
  readonly error: Locator;

  constructor(readonly page: Page) {
    this.composer = page.getByTestId("composer-input");
    this.sendButton = page.getByTestId("send-button");
    this.stopButton = page.getByTestId("stop-button");
    this.userMessages = page.getByTestId("message-user");
    this.replies = page.getByTestId("message-ai");
    this.sidebar = page.getByTestId("sidebar");
    this.conversationItems = page.getByTestId("conversation-item");
    this.searchInput = page.getByTestId("search-input");
    this.settings = page.getByTestId("settings-panel");
    this.liveRegion = page.getByTestId("live-region");
    this.error = page.getByTestId("chat-error");
  }

  async goto(pathname = "/") {
    await this.page.goto(pathname);
    await expect(this.composer).toBeVisible();
  }

  lastReply(): Locator {
    return this.replies.last();
  }

  lastReplyText(): Locator {
    return this.lastReply().getByTestId("message-content");
  }

  /**
   * Answers every chat request of this page with `content`, streamed as a finished reply in
   * small token lines, without the model: for tests of how the browser renders a given reply
   * (the frontend is under test there, not the model's wording).
   */
  async fakeReplies(content: string) {
    await this.page.route("**/api/v1/chat", async (route) => {
      const { id } = route.request().postDataJSON() as { id: string };
      const messageId = `fake-${Date.now().toString(36)}`;
      const tokens = content.match(/[\s\S]{1,12}/g) ?? [];
      const events = [
        { type: "start", id, message_id: messageId, model: "qwen2.5-coder-0.5b-instruct" },
        ...tokens.map((token) => ({ type: "token", content: token })),
        {
          type: "end",
          message_id: messageId,
          finish_reason: "stop",
          usage: { prompt_tokens: 20, completion_tokens: tokens.length },
          timings: { ttft_ms: 120, tokens_per_second: 30 },
        },
      ];
      await route.fulfill({
        status: 200,
        contentType: "application/x-ndjson",
        body: events.map((e) => JSON.stringify(e)).join("\n") + "\n",
      });
    });
  }

  async send(text: string) {
    await this.composer.fill(text);
    await this.composer.press("Enter");
    await expect(this.userMessages.last()).toContainText(text.slice(0, 40));
  }

  /** Waits until the last reply has finished (complete or cancelled). */
  async waitForReply(timeout = 90_000) {
    await expect(this.lastReply()).toHaveAttribute("data-status", /complete|cancelled/, { timeout });
    await expect(this.sendButton).toBeVisible();
  }

  async sendAndWait(text: string) {
    await this.send(text);
    await this.waitForReply();
  }

  async currentConversationId(): Promise<string> {
    await expect(this.page).toHaveURL(/\/c\/[^/]+$/);
    return decodeURIComponent(new URL(this.page.url()).pathname.split("/").pop() ?? "");
  }

  conversation(title: string | RegExp): Locator {
    return this.conversationItems.filter({ hasText: title });
  }

  async rename(item: Locator, title: string) {
    await item.hover();
    await item.getByTestId("conversation-menu").click();
    await this.page.getByTestId("rename-conversation").click();
    const input = this.page.getByTestId("rename-input");
    await input.fill(title);
    await this.page.getByTestId("rename-save").click();
    await expect(this.page.getByTestId("rename-dialog")).toBeHidden();
  }

  async delete(item: Locator) {
    await item.hover();
    await item.getByTestId("conversation-menu").click();
    await this.page.getByTestId("delete-conversation").click();
    await expect(this.page.getByTestId("delete-dialog")).toBeVisible();
    await this.page.getByTestId("delete-confirm").click();
  }

  async setTheme(theme: "light" | "dark" | "system") {
    await this.page.getByTestId("theme-toggle").click();
    await this.page.getByTestId(`theme-${theme}`).click();
  }

  async selectModel(id: string) {
    await this.page.getByTestId("model-select").click();
    await this.page.locator(`[data-testid="model-option"][data-model="${id}"]`).click();
    await expect(this.page.getByTestId("model-select")).not.toHaveAttribute("data-state", "open");
  }

  async setMaxTokens(n: number) {
    await this.page.getByTestId("max-tokens").fill(String(n));
  }

  async setTemperature(value: number) {
    await this.page.getByTestId("temperature-input").fill(String(value));
  }

  async screenshot(name: string) {
    fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await this.page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`) });
  }
}
