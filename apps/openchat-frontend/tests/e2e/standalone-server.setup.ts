/**
 * The standalone server (`node .next/standalone/server.js`, what `make run`, the image and these
 * tests start) serves `/_next/static` only from its own folder: without the copy step after
 * `next build` it answers 404 there and the app is a blank page. Every other e2e test depends on
 * this one (playwright.config.ts), so a missing copy fails here, once, with the reason.
 */
import { expect, test } from "./fixtures";

test("the server answers the page's stylesheets and scripts, and the page is styled", async ({ chat, page }) => {
  await page.goto("/");
  const assets = await page.evaluate(() => ({
    stylesheets: [...document.querySelectorAll<HTMLLinkElement>('link[rel="stylesheet"]')].map((l) => l.href),
    scripts: [...document.querySelectorAll<HTMLScriptElement>("script[src]")].map((s) => s.src),
  }));
  expect(assets.stylesheets.length).toBeGreaterThan(0);
  expect(assets.scripts.length).toBeGreaterThan(0);
  const failed: string[] = [];
  for (const url of [...assets.stylesheets, ...assets.scripts]) {
    const res = await page.request.get(url);
    if (res.status() !== 200) failed.push(`${res.status()} ${url}`);
  }
  expect(
    failed,
    "static files missing next to .next/standalone/server.js: copy .next/static to .next/standalone/.next/static after next build (as the Makefile does)",
  ).toEqual([]);

  // The scripts ran (the composer is rendered on the client) and the stylesheet applies.
  await expect(chat.composer).toBeVisible();
  await expect(page.getByTestId("chat-app")).toHaveCSS("display", "flex");
  await expect(page.locator("body")).toHaveCSS("font-family", /system-ui/);
});
