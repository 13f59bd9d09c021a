import { expect, postChat, serverEnv, test } from "./fixtures";
import { recordValues } from "./observe";

// Issue 8, §4.10: keyboard users land in the composer, can skip to it, and a reload of an open
// conversation never reads "New chat".

/** Creates conversations through the app's API (1-token replies) and returns their ids. */
async function createConversations(count: number, label: string): Promise<string[]> {
  const base = serverEnv("E2E_BASE_URL");
  const ids: string[] = [];
  for (let i = 1; i <= count; i++) {
    const id = `${label}-${Date.now().toString(36)}-${i}`;
    const res = await postChat(base, id, `${label} chat number ${i}`, { max_tokens: 1, temperature: 0 });
    expect(res.status).toBe(200);
    await res.text();
    ids.push(id);
  }
  return ids;
}

async function deleteConversations(ids: string[]) {
  const base = serverEnv("E2E_BASE_URL");
  for (const id of ids) await fetch(`${base}/api/v1/conversations/${encodeURIComponent(id)}`, { method: "DELETE" });
}

test("the composer has the focus on load, after opening a chat and after New chat; a skip link comes first", async ({
  chat,
  page,
}) => {
  const ids = await createConversations(9, "kbd");
  try {
    await chat.goto("/");
    await expect(chat.composer).toBeFocused();
    for (const id of ids) await expect(page.locator(`[data-testid="conversation-item"][data-id="${id}"]`)).toHaveCount(1);

    // From the top of the page, the first Tab stop is a visible "skip" link that lands in the composer.
    // (Focus a point at the very start of the page first, as a browser does after its address bar.)
    await page.evaluate(() => {
      const start = document.createElement("span");
      start.tabIndex = -1;
      start.id = "e2e-page-start";
      document.body.prepend(start);
      start.focus();
    });
    await page.keyboard.press("Tab");
    await page.evaluate(() => document.getElementById("e2e-page-start")?.remove());
    const skip = page.getByTestId("skip-to-composer");
    await expect(skip).toBeFocused();
    await expect(skip).toHaveText("Skip to message box");
    const box = await skip.boundingBox();
    expect(box?.width ?? 0).toBeGreaterThan(40);
    expect(box?.height ?? 0).toBeGreaterThan(16);
    await page.keyboard.press("Enter");
    await expect(chat.composer).toBeFocused();

    // Opening a chat from the list.
    await page.locator(`[data-testid="conversation-item"][data-id="${ids[3]}"] [data-testid="conversation-link"]`).click();
    await expect(page).toHaveURL(new RegExp(`/c/${ids[3]}$`));
    await expect(chat.replies).toHaveCount(1);
    await expect(chat.composer).toBeFocused();

    // New chat.
    await page.getByTestId("new-chat").click();
    await expect(page.getByTestId("empty-state")).toBeVisible();
    await expect(chat.composer).toBeFocused();

    // Reloading a conversation.
    await page.goto(`/c/${ids[5]}`);
    await expect(chat.replies).toHaveCount(1);
    await expect(chat.composer).toBeFocused();
  } finally {
    await deleteConversations(ids);
  }
});

test("a reload of /c/<id> never shows \"New chat\" in the header", async ({ chat, page }) => {
  const [id] = await createConversations(1, "reload");
  try {
    const titles = await recordValues(page, "title", '[data-testid="chat-title"]');
    await chat.goto(`/c/${id}`);
    await expect(chat.replies).toHaveCount(1);

    // Hold the conversation and the list back, so the load is visibly in progress.
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route(
      (url) => url.pathname.startsWith("/api/v1/conversations"),
      async (route) => {
        await held;
        await route.continue();
      },
    );
    await page.reload();
    await expect(page.getByTestId("conversation-loading")).toBeVisible();
    const header = page.getByTestId("chat-title");
    await expect(header).toHaveAttribute("aria-busy", "true");
    await expect(header).not.toHaveText("New chat");
    release();

    await expect(chat.replies).toHaveCount(1);
    const detail = await fetch(`${serverEnv("E2E_BASE_URL")}/api/v1/conversations/${id}`);
    const { title } = (await detail.json()) as { title: string };
    expect(title).not.toBe("");
    await expect(header).toHaveText(title);
    const seen = await titles();
    expect(seen).toContain(title);
    expect(seen).not.toContain("New chat");
  } finally {
    await page.unrouteAll({ behavior: "ignoreErrors" });
    await deleteConversations([id!]);
  }
});
