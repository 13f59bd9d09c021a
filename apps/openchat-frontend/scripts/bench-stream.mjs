/**
 * How smooth a long streamed reply is in the browser: frame gaps while ~300 tokens render
 * as Markdown, measured with requestAnimationFrame in Debian's Chromium.
 * Usage: node scripts/bench-stream.mjs <frontend-url>   (the backend behind it: auth off)
 */
import { chromium } from "@playwright/test";

const url = process.argv[2] ?? "http://127.0.0.1:3000";
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1366, height: 860 } });
await page.addInitScript(() => {
  localStorage.setItem(
    "openchat:settings:default",
    JSON.stringify({ model: "qwen2.5-coder-0.5b-instruct", max_tokens: 300, temperature: 0, top_p: 0.95 }),
  );
});
await page.goto(url);
await page.getByTestId("composer-input").fill("Write a long tutorial on Python decorators with several code examples.");
await page.evaluate(() => {
  const w = window;
  w.__frames = [];
  const tick = (t) => {
    w.__frames.push(t);
    if (!w.__stopFrames) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
});
await page.keyboard.press("Enter");
await page.getByTestId("message-ai").first().waitFor();
await page.waitForFunction(() => !document.querySelector('[data-testid="stop-button"]'), null, { timeout: 120_000 });
const frames = await page.evaluate(() => {
  window.__stopFrames = true;
  return window.__frames;
});
const gaps = frames.slice(1).map((t, i) => t - frames[i]).sort((a, b) => a - b);
const pct = (p) => gaps[Math.min(gaps.length - 1, Math.floor(gaps.length * p))].toFixed(1);
const chars = await page.getByTestId("message-ai").first().innerText();
console.log(
  `frames: ${gaps.length}, gap p50 ${pct(0.5)} ms, p95 ${pct(0.95)} ms, p99 ${pct(0.99)} ms, max ${pct(1)} ms, ` +
    `frames over 50 ms: ${gaps.filter((g) => g > 50).length}; reply ${chars.length} characters`,
);
await browser.close();
