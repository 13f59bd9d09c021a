import type { Locator, Page } from "@playwright/test";

import { expect, test } from "./fixtures";
import { TEST_MODEL } from "./servers";

// Issue 8, §4.11: model names are shown whole, "8K ctx" stays on one line, and a phone has a
// New chat button outside the conversations sheet.

/** The default model's full name, as the server lists it. */
async function modelName(page: Page): Promise<string> {
  const res = await page.request.get("/api/v1/models");
  const { models } = (await res.json()) as { models: { id: string; name: string }[] };
  const model = models.find((m) => m.id === TEST_MODEL);
  expect(model?.name).toBeTruthy();
  return model!.name;
}

/** Shows `name` whole: that exact text, and nothing clipped or ellipsed. */
async function expectWhole(element: Locator, name: string) {
  await expect(element).toHaveText(name);
  const { scrollWidth, clientWidth } = await element.evaluate((el) => ({ scrollWidth: el.scrollWidth, clientWidth: el.clientWidth }));
  expect(scrollWidth, `"${name}" is cut: ${scrollWidth}px of text in ${clientWidth}px`).toBeLessThanOrEqual(clientWidth);
}

/** How many lines the element's text takes. */
function lineCount(element: Locator): Promise<number> {
  return element.evaluate((el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    return new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top))).size;
  });
}

/** Opens the model picker and checks every model's name and context size. */
async function expectModelPickerWhole(page: Page, name: string) {
  await expectWhole(page.getByTestId("model-select").locator(":scope > span").first(), name);
  await page.getByTestId("model-select").click();
  const options = page.getByTestId("model-option");
  await expect(options.first()).toBeVisible();
  expect(await options.count()).toBeGreaterThanOrEqual(2);
  for (const option of await options.all()) {
    const context = option.getByText(/^\d+K ctx$/);
    await expect(context).toBeVisible();
    expect(await lineCount(context), `"${await context.textContent()}" wraps`).toBe(1);
  }
  await expectWhole(page.locator(`[data-testid="model-option"][data-model="${TEST_MODEL}"]`).getByText(name, { exact: true }), name);
  await page.keyboard.press("Escape");
}

test.describe("phone", () => {
  test.use({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

  test("New chat is in the header, and model names and sizes are whole", async ({ chat, page }) => {
    const name = await modelName(page);
    await chat.goto("/");
    await chat.sendAndWait("Say hi in three words.");
    await chat.currentConversationId();

    // New chat without opening the conversations sheet.
    const newChat = page.getByTestId("header-new-chat");
    await expect(newChat).toBeVisible();
    await newChat.click();
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByTestId("empty-state")).toBeVisible();
    await expect(page.getByTestId("sidebar-sheet")).toBeHidden();

    await page.getByTestId("toggle-settings").click();
    await expect(page.getByTestId("settings-sheet")).toBeVisible();
    await expectModelPickerWhole(page, name);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  });
});

for (const viewport of [
  { width: 800, height: 700 },
  { width: 1024, height: 768 },
]) {
  test.describe(`narrow desktop ${viewport.width}x${viewport.height}`, () => {
    test.use({ viewport });

    test("the model's name is whole in the header and the picker", async ({ chat, page }) => {
      const name = await modelName(page);
      await chat.goto("/");
      await expectWhole(page.getByTestId("header-model"), name);
      if (viewport.width < 1024) {
        // No docked conversations panel: New chat is in the header.
        await expect(page.getByTestId("header-new-chat")).toBeVisible();
        await page.getByTestId("toggle-settings").click();
      }
      await expectModelPickerWhole(page, name);
    });
  });
}
