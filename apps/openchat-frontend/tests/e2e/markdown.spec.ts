/**
 * How replies and user messages are rendered. The replies are given (ChatPage.fakeReplies
 * answers the chat request in the browser), so each test shows exactly the Markdown it is about.
 */
import { expect, test } from "./fixtures";

test("keeps single line breaks in a reply", async ({ chat }) => {
  await chat.goto("/");
  await chat.fakeReplies("**Team members:**\nAlice Smith\nBob Jones\nCarol White\n\nThat is all.");
  await chat.sendAndWait("List the team members, one per line.");
  const reply = chat.lastReplyText();
  await expect(reply.locator("strong")).toHaveText("Team members:");
  // innerText is what is on screen: one name per line, not "Alice Smith Bob Jones Carol White".
  expect(await reply.locator("p").first().evaluate((p: HTMLElement) => p.innerText)).toBe(
    "Team members:\nAlice Smith\nBob Jones\nCarol White",
  );
});

test("renders LaTeX math with KaTeX, fonts served by the app itself", async ({ chat, page }) => {
  const requests: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  const fonts: { url: string; status: number }[] = [];
  page.on("response", (r) => {
    if (r.request().resourceType() === "font") fonts.push({ url: r.url(), status: r.status() });
  });

  await chat.goto("/");
  await chat.fakeReplies(
    [
      "Inline: \\( x^2 \\) and $$y_1$$.",
      "",
      "It costs $5 and $10.",
      "",
      "\\[ \\frac{a}{b} \\]",
      "",
      "$$",
      "E = mc^2",
      "$$",
      "",
      "Code stays code: `\\( not math \\)`",
      "",
      "```text",
      "\\[ raw \\]",
      "```",
    ].join("\n"),
  );
  await chat.sendAndWait("Show some math.");
  const reply = chat.lastReplyText();

  // Two inline formulas and two displayed ones, each typeset from its TeX source.
  await expect(reply.locator(".katex-display")).toHaveCount(2);
  await expect(reply.locator(".katex")).toHaveCount(4);
  const sources = await reply.locator('annotation[encoding="application/x-tex"]').allTextContents();
  expect(sources.map((s) => s.trim())).toEqual(["x^2", "y_1", "\\frac{a}{b}", "E = mc^2"]);
  const firstLine = await reply.locator("p").first().evaluate((p: HTMLElement) => p.innerText);
  expect(firstLine).not.toContain("( x^2 )");
  expect(firstLine).not.toContain("$");
  // Single dollars are prices, not math.
  await expect(reply.locator("p").nth(1)).toHaveText("It costs $5 and $10.");

  // Code is left alone, backslashes included.
  await expect(reply.locator("p code")).toHaveText("\\( not math \\)");
  await expect(reply.getByTestId("code-block").locator("pre")).toHaveText("\\[ raw \\]");

  // KaTeX's stylesheet is applied (the MathML copy is hidden for screen readers only) and its
  // fonts load from this server, never from another host.
  await expect(reply.locator(".katex-mathml").first()).toHaveCSS("position", "absolute");
  await expect(reply.locator(".katex-display").first()).toHaveCSS("text-align", "center");
  await chat.screenshot("markdown-math");
  await page.evaluate(() => document.fonts.ready);
  const loaded = await page.evaluate(() =>
    [...document.fonts].filter((f) => f.family.replace(/"/g, "").startsWith("KaTeX") && f.status === "loaded").length,
  );
  expect(loaded).toBeGreaterThan(0);
  expect(fonts.length).toBeGreaterThan(0);
  const appOrigin = new URL(page.url()).origin;
  for (const font of fonts) {
    expect(font.status, font.url).toBe(200);
    expect(new URL(font.url).origin).toBe(appOrigin);
  }
  expect(requests.filter((url) => new URL(url).origin !== appOrigin)).toEqual([]);
});

test("table columns wrap between words, and a wide table scrolls", async ({ chat, page }) => {
  const header = [
    "Country",
    "Capital",
    "Population",
    "Language",
    "Currency",
    "Continent",
    "Timezone",
    "Climate",
    "Government",
    "Landmark",
    "Export",
    "Anthem",
  ];
  const row = ["Germany", "Berlin", "Eighty", "German", "Euro", "Europe", "Central", "Temperate", "Federal", "Brandenburg", "Machinery", "Deutschlandlied"];
  await chat.goto("/");
  await chat.fakeReplies(
    [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, `| ${row.join(" | ")} |`].join("\n"),
  );
  await chat.sendAndWait("Show a table about Germany.");
  const table = chat.lastReplyText().locator("table");
  await expect(table.locator("th")).toHaveCount(header.length);

  // Every cell holds one word: each must sit on one line (a word broken mid-word spans two).
  const cellLines = await table.locator("th, td").evaluateAll((cells) =>
    cells.map((cell) => {
      const range = document.createRange();
      range.selectNodeContents(cell);
      const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
      return `${cell.textContent}:${lines.size}`;
    }),
  );
  expect(cellLines).toEqual([...header, ...row].map((word) => `${word}:1`));

  // The table is wider than the reply: it scrolls sideways on its own, the page does not.
  const scroller = chat.lastReplyText().getByTestId("table-scroll");
  const overflow = await scroller.evaluate((el) => el.scrollWidth - el.clientWidth);
  expect(overflow).toBeGreaterThan(0);
  await expect(scroller).toHaveCSS("overflow-x", "auto");
  await chat.screenshot("markdown-table");
  const list = page.getByTestId("message-list");
  expect(await list.evaluate((el) => el.scrollWidth - el.clientWidth)).toBeLessThanOrEqual(0);
});

test("collapses a very long user message behind Show more", async ({ chat }) => {
  const paragraph =
    "This is a long pasted document about the quarterly report, with numbers, names and notes that go on. ";
  const long = Array.from({ length: 20 }, (_, i) => `Section ${i + 1}. ${paragraph.repeat(10)}`).join("\n\n").slice(0, 20_000);
  expect(long).toHaveLength(20_000);
  await chat.goto("/");
  await chat.fakeReplies("Got it.");
  await chat.sendAndWait(long);

  const message = chat.userMessages.last();
  const content = message.getByTestId("message-content");
  const more = message.getByRole("button", { name: "Show more" });
  await expect(more).toBeVisible();
  await expect(more).toHaveAttribute("aria-expanded", "false");
  const collapsed = (await content.boundingBox())!.height;
  expect(collapsed).toBeLessThan(600);
  await chat.screenshot("long-message-collapsed");
  // The whole text is still there (copy, search in page), only clipped.
  await expect(content).toHaveText(long);

  await more.click();
  const less = message.getByRole("button", { name: "Show less" });
  await expect(less).toHaveAttribute("aria-expanded", "true");
  expect((await content.boundingBox())!.height).toBeGreaterThan(3000);

  await less.click();
  await expect(more).toBeVisible();
  expect((await content.boundingBox())!.height).toBe(collapsed);

  // A short message has nothing to expand.
  await chat.sendAndWait("And a short question?");
  await expect(chat.userMessages.last().getByRole("button", { name: /Show (more|less)/ })).toHaveCount(0);
});
