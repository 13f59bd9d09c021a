import fs from "node:fs";

import type { Download, Locator, Page } from "@playwright/test";

import { authTest, expect, test } from "./fixtures";
import { AuthPage } from "./pages/auth-page";
import { ChatPage } from "./pages/chat-page";

const password = "correct-horse-9";
const stamp = Date.now().toString(36);

type ExportedMessage = { id: string; parent_id: string | null; role: string; content: string };
type ExportedConversation = { id: string; title: string | null; active_leaf_id: string | null; messages: ExportedMessage[] };
type OpenChatExport = { format: string; version: number; conversations: ExportedConversation[] };

/** What the conversation shows, in order: each message's role and text as rendered. */
async function shownMessages(page: Page): Promise<string[]> {
  return page
    .locator('[data-testid="message-user"], [data-testid="message-ai"]')
    .evaluateAll((nodes) =>
      nodes.map((n) => {
        const text = (n.getAttribute("data-role") === "ai" ? n.querySelector('[data-testid="message-content"]') : n)
          ?.textContent;
        return `${n.getAttribute("data-role")}: ${(text ?? "").trim()}`;
      }),
    );
}

/** Export -> JSON or Markdown from a conversation's menu in the sidebar. */
async function exportFromMenu(page: Page, item: Locator, format: "json" | "markdown"): Promise<Download> {
  await item.hover();
  await item.getByTestId("conversation-menu").click();
  await page.getByTestId("export-conversation").click();
  const download = page.waitForEvent("download");
  await page.getByTestId(`export-${format}`).click();
  return download;
}

async function downloaded(download: Download): Promise<string> {
  return fs.readFileSync(await download.path(), "utf8");
}

authTest(
  "a conversation exported as JSON and imported by another user shows the same messages, order and versions",
  async ({ page, auth, chat, browser, baseURL }) => {
    await auth.signup(`exporter-${stamp}@example.com`, password);
    await chat.setTemperature(1);
    await chat.sendAndWait("Name three fruits, one per line.");
    const firstVersion = (await chat.lastReplyText().textContent()) ?? "";
    await chat.lastReply().getByTestId("regenerate-button").click();
    await chat.waitForReply();
    await expect(chat.lastReply().getByTestId("message-versions")).toContainText("2 / 2");
    await chat.sendAndWait("Which one is the sweetest?");
    const shown = await shownMessages(page);
    expect(shown).toHaveLength(4);

    // JSON: every message, both versions of the first reply included.
    const item = chat.conversationItems.first();
    const jsonDownload = await exportFromMenu(page, item, "json");
    expect(jsonDownload.suggestedFilename()).toMatch(/^openchat-[\p{L}\p{N}-]+-\d{4}-\d{2}-\d{2}\.json$/u);
    const exported = JSON.parse(await downloaded(jsonDownload)) as OpenChatExport;
    expect(exported.format).toBe("openchat");
    expect(exported.conversations).toHaveLength(1);
    const [conversation] = exported.conversations;
    expect(conversation!.id).toBe(await chat.currentConversationId());
    expect(conversation!.messages.map((m) => m.role)).toEqual(["user", "ai", "ai", "user", "ai"]);

    // Markdown: the path shown, as written.
    const markdownDownload = await exportFromMenu(page, item, "markdown");
    expect(markdownDownload.suggestedFilename()).toMatch(/\.md$/);
    const markdown = await downloaded(markdownDownload);
    const byId = new Map(conversation!.messages.map((m) => [m.id, m]));
    const path: ExportedMessage[] = [];
    for (let m = byId.get(conversation!.active_leaf_id ?? ""); m; m = byId.get(m.parent_id ?? "")) path.unshift(m);
    expect(path).toHaveLength(4);
    for (const m of path) expect(markdown).toContain(m.content.trim());

    // Export all: the same conversation, in one file.
    const allDownload = page.waitForEvent("download");
    await page.getByTestId("export-all").click();
    const all = await allDownload;
    expect(all.suggestedFilename()).toMatch(/^openchat-export-\d{4}-\d{2}-\d{2}\.json$/);
    expect((JSON.parse(await downloaded(all)) as OpenChatExport).conversations.map((c) => c.id)).toEqual([conversation!.id]);

    // Another user imports the JSON file through the settings panel.
    const context = await browser.newContext({ baseURL });
    try {
      const other = await context.newPage();
      await new AuthPage(other).signup(`importer-${stamp}@example.com`, password);
      const otherChat = new ChatPage(other);
      await expect(other.getByTestId("conversation-empty")).toBeVisible();
      await other.getByTestId("import-input").setInputFiles(await jsonDownload.path());
      await expect(other.getByTestId("import-result")).toHaveText("Imported 1 conversation");
      // The list shows it without a reload.
      await expect(otherChat.conversationItems).toHaveCount(1);
      await otherChat.conversationItems.first().getByTestId("conversation-link").click();
      await expect.poll(() => shownMessages(other)).toEqual(shown);
      const reply = otherChat.replies.first();
      await expect(reply.getByTestId("message-versions")).toContainText("2 / 2");
      await reply.getByRole("button", { name: "Previous version" }).click();
      await expect(reply.getByTestId("message-content")).toHaveText(firstVersion);
    } finally {
      await context.close();
    }
  },
);

/** A small OpenChat export written by hand: one conversation, a question and its reply. */
function openChatFile(id: string, padding = 0): Buffer {
  const file = {
    format: "openchat",
    version: 1,
    exported_at: "2026-11-01T10:00:00Z",
    conversations: [
      {
        id,
        title: `Imported ${id}`,
        created_at: "2026-11-01T09:00:00Z",
        updated_at: "2026-11-01T09:01:00Z",
        settings: {},
        active_leaf_id: `${id}-a`,
        messages: [
          { id: `${id}-q`, parent_id: null, role: "user", content: "Où est la gare ?", status: "complete" },
          { id: `${id}-a`, parent_id: `${id}-q`, role: "ai", content: "Tout droit, puis à gauche.", status: "complete" },
        ],
      },
    ],
  };
  // Whitespace after the JSON keeps it valid and makes the file as large as a test needs.
  return Buffer.from(JSON.stringify(file, null, 1) + " ".repeat(padding));
}

test("a large import shows the upload's progress; importing it again finds it already there", async ({ chat, page }) => {
  const id = `import-${stamp}`;
  const file = { name: "openchat-export.json", mimeType: "application/json", buffer: openChatFile(id, 4 * 1024 * 1024) };
  await chat.goto("/");
  // A slow upload (1 MB/s), so that its progress shows.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: 1024 * 1024,
  });
  try {
    await page.getByTestId("import-input").setInputFiles(file);
    const progress = page.getByTestId("import-progress");
    await expect(progress).toHaveAttribute("data-phase", "uploading");
    await expect(progress).toContainText(/Uploading… .* of 4\.0 MB/);
    await expect(progress.getByRole("progressbar", { name: "Import progress" })).toBeVisible();
    await expect(page.getByTestId("import-result")).toHaveText("Imported 1 conversation");
    await expect(progress).toBeHidden();
    await chat.screenshot("import-result");
    await expect(chat.conversation(`Imported ${id}`)).toHaveCount(1);
  } finally {
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });
  }

  await page.getByTestId("import-input").setInputFiles(file);
  await expect(page.getByTestId("import-result")).toHaveText("Imported 0 conversations (1 already there)");
  await expect(chat.conversation(`Imported ${id}`)).toHaveCount(1);

  // The imported conversation opens with its messages.
  await chat.conversation(`Imported ${id}`).getByTestId("conversation-link").click();
  await expect.poll(() => shownMessages(page)).toEqual(["user: Où est la gare ?", "ai: Tout droit, puis à gauche."]);
  const importedId = await chat.conversation(`Imported ${id}`).getAttribute("data-id");
  await page.request.delete(`/api/v1/conversations/${importedId}`);
});

test("importing a broken file shows the server's message and imports nothing", async ({ chat, page }) => {
  const id = `broken-${stamp}`;
  const file = JSON.parse(openChatFile(id).toString()) as OpenChatExport;
  file.conversations[0]!.messages[1]!.role = "robot";
  const buffer = Buffer.from(JSON.stringify(file));
  // What the server says about this file.
  const answer = await page.request.post("/api/v1/import", { data: buffer, headers: { "Content-Type": "application/json" } });
  expect(answer.status()).toBe(400);
  const { detail } = (await answer.json()) as { detail: string };

  await chat.goto("/");
  await page.getByTestId("import-input").setInputFiles({ name: "broken.json", mimeType: "application/json", buffer });
  await expect(page.getByTestId("import-error")).toHaveText(detail);
  await expect(page.getByTestId("import-result")).toHaveCount(0);
  await chat.searchInput.fill(`Imported ${id}`);
  await expect(page.getByTestId("conversation-empty")).toBeVisible();
});
