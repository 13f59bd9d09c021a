import type { Page } from "@playwright/test";

import { expect, test } from "./fixtures";

const QUESTION = "<script>alert('xss-user')</script> how do I reverse a list in python?";
/** The backend's first message cut short (app/services/titles.py make_title): the title before summaries. */
const FIRST_MESSAGE_CUT_SHORT = "<script>alert('xss-user')</script> how do I reverse a list…";

type StreamLine = { type: string; title?: string; processed?: number; total?: number };

/** The NDJSON lines of a finished chat response. */
async function streamLines(body: Promise<string>): Promise<StreamLine[]> {
  return (await body)
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as StreamLine);
}

/** Bodies of the page's chat responses, each resolving once its stream has closed. */
function recordChatBodies(page: Page): Promise<string>[] {
  const bodies: Promise<string>[] = [];
  page.on("response", (res) => {
    if (res.url().endsWith("/api/v1/chat") && res.request().method() === "POST") bodies.push(res.text());
  });
  return bodies;
}

test("the sidebar shows a summary title, not the first message cut short, and its HTML stays text", async ({
  chat,
  page,
}) => {
  test.setTimeout(420_000); // this machine's 2 cores may be shared: generous bounds, no timing asserted
  const dialogs: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  const bodies = recordChatBodies(page);
  await chat.goto("/");
  await chat.setMaxTokens(32);
  // The same reply every run, so the same summary request (a varied reply sometimes gets an
  // answer the title rule rejects, and the first message cut short rightly stays).
  await chat.setTemperature(0);
  await chat.send(QUESTION);
  await chat.waitForReply(240_000);
  const id = await chat.currentConversationId();
  const item = page.locator(`[data-testid="conversation-item"][data-id="${id}"]`);
  await expect(item).toBeVisible();
  // The title first stored (and the only one before summaries): the first message cut short.
  expect(bodies).toHaveLength(1);
  const streamed = await streamLines(bodies[0]!);
  const titles = streamed.filter((e) => e.type === "title");
  expect(titles.map((t) => t.title)).toEqual([FIRST_MESSAGE_CUT_SHORT]);
  expect(streamed.at(-1)?.type).toBe("end"); // the summary is not in the stream: `end` stays last

  // The model writes the title in the background after the reply; wait until it is stored.
  let summary = "";
  await expect
    .poll(
      async () => {
        const res = await page.request.get(`/api/v1/conversations/${encodeURIComponent(id)}`);
        summary = ((await res.json()) as { title: string | null }).title ?? "";
        return summary;
      },
      { timeout: 150_000, intervals: [1_000] },
    )
    .not.toBe(FIRST_MESSAGE_CUT_SHORT);
  expect(summary.length).toBeGreaterThan(0);
  expect(summary).not.toBe(QUESTION);

  // The open page picks the summary up by itself, in the sidebar and the header...
  await expect(item.getByTestId("conversation-link")).toHaveText(summary, { timeout: 60_000 });
  await expect(page.getByTestId("chat-title")).toHaveText(summary);
  // ...and it is what a reload shows.
  await page.reload();
  await expect(item).toBeVisible();
  await expect(item.getByTestId("conversation-link")).toHaveText(summary);
  await expect(page.getByTestId("chat-title")).toHaveText(summary);
  // HTML in the first message stays text: shown literally, nothing injected, nothing ran.
  await expect(chat.userMessages.first()).toContainText("<script>alert('xss-user')</script>");
  await expect(item.locator("script, img")).toHaveCount(0);
  await expect(chat.userMessages.first().locator("script, img")).toHaveCount(0);
  expect(dialogs).toEqual([]);
});

test("a long pasted prompt shows how much of it the model has read before the first token", async ({ chat, page }) => {
  test.setTimeout(300_000);
  // Records each progress value the page showed, however briefly.
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { promptProgressSeen: string[] }).promptProgressSeen = seen;
    new MutationObserver(() => {
      const bar = document.querySelector('[data-testid="prompt-progress"] [role="progressbar"]');
      const value = bar?.getAttribute("aria-valuenow");
      if (value != null && seen.at(-1) !== value) seen.push(value);
    }).observe(document, { subtree: true, childList: true, attributes: true });
  });
  const bodies = recordChatBodies(page);
  await chat.goto("/");
  // About 1,700 tokens, new to the engine's cache (the marker): several of its 256-token steps.
  const marker = Date.now().toString(36);
  const lines = Array.from(
    { length: 70 },
    (_, i) => `Line ${i} of report ${marker}: the quick brown fox jumps over the lazy dog, number ${i}.`,
  );
  await chat.composer.fill(`${lines.join("\n")}\nSummarise this report in one sentence.`);
  await chat.composer.press("Enter");

  const progress = chat.lastReply().getByTestId("prompt-progress");
  await expect(progress).toBeVisible({ timeout: 120_000 });
  await expect(progress).toContainText(/Reading your message… \d+%/);
  await expect(progress.getByRole("progressbar", { name: "Reading your message" })).toHaveAttribute(
    "aria-valuenow",
    /^\d+$/,
  );
  await chat.waitForReply(240_000);
  await expect(chat.lastReplyText()).not.toBeEmpty();
  await expect(progress).toHaveCount(0);

  // What the server sent: progress of the whole prompt, only before the first token.
  expect(bodies).toHaveLength(1);
  const events = await streamLines(bodies[0]!);
  const firstToken = events.findIndex((e) => e.type === "token");
  expect(firstToken).toBeGreaterThan(0);
  const sent = events.filter((e) => e.type === "progress");
  expect(sent.length).toBeGreaterThan(0);
  expect(events.slice(firstToken).some((e) => e.type === "progress")).toBe(false);
  for (const e of sent) expect(e.processed!).toBeLessThanOrEqual(e.total!);
  expect(sent[0]!.total).toBeGreaterThan(1_000);

  // And the page showed it: percentages that only go up, each at most 100.
  const seen = (await page.evaluate(() => (window as unknown as { promptProgressSeen: string[] }).promptProgressSeen)).map(
    Number,
  );
  expect(seen.length).toBeGreaterThan(0);
  expect(seen).toEqual([...seen].sort((a, b) => a - b));
  expect(Math.max(...seen)).toBeLessThanOrEqual(100);
});
