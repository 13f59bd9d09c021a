import { authTest as test, downTest, expect, expiryTest } from "./fixtures";
import { ChatPage } from "./pages/chat-page";

test.describe.configure({ mode: "serial" });

const password = "correct-horse-9";
const stamp = Date.now().toString(36);
const alice = `alice-${stamp}@example.com`;
const bob = `bob-${stamp}@example.com`;

test("a new install opens on sign-up; both forms validate", async ({ page, auth }) => {
  // No account exists yet on this backend: the app opens on the sign-up page.
  await page.goto("/");
  await expect(page).toHaveURL(/\/signup$/);

  await page.goto("/login");
  await auth.submit.click();
  await expect(auth.emailError).toContainText("Enter your email");
  await auth.fill("not-an-email", "x");
  await auth.submit.click();
  await expect(auth.emailError).toContainText("valid email");
  await auth.fill("nobody@example.com", "wrong-password");
  await auth.submit.click();
  await expect(auth.formError).toContainText("don't match");
  await new ChatPage(page).screenshot("login-light");

  await page.goto("/signup");
  await auth.fill("someone@example.com", "short");
  await auth.submit.click();
  await expect(auth.passwordError).toContainText("at least 8");
  await page.emulateMedia({ colorScheme: "dark" });
  await new ChatPage(page).screenshot("signup-dark");
  await page.emulateMedia({ colorScheme: "light" });
});

test("signs up, chats, logs out, logs back in and finds the conversation", async ({ page, auth, chat }) => {
  await auth.signup(alice, password);
  await expect(page.getByTestId("user-menu")).toBeVisible();
  await chat.sendAndWait("Tell me a fun fact about octopuses.");
  const id = await chat.currentConversationId();

  // Every API call carried the bearer token; a reload restores the session from the cookie.
  await page.reload();
  await expect(chat.composer).toBeVisible();
  await expect(page.locator(`[data-testid="conversation-item"][data-id="${id}"]`)).toBeVisible();

  // Email already taken.
  await page.getByTestId("user-menu").click();
  await expect(page.getByTestId("user-email")).toHaveText(alice);
  await page.getByTestId("logout").click();
  await expect(page).toHaveURL(/\/login/);

  // Logged out: the cookie is gone, protected pages redirect with ?next=.
  await page.goto(`/c/${id}`);
  await expect(page).toHaveURL(new RegExp(`/login\\?next=${encodeURIComponent(`/c/${id}`)}`));
  await auth.login(alice, password);
  await expect(page).toHaveURL(new RegExp(`/c/${id}$`));
  await expect(chat.replies).toHaveCount(1);
  await expect(chat.userMessages.first()).toContainText("octopuses");
  await expect(page.locator(`[data-testid="conversation-item"][data-id="${id}"]`)).toBeVisible();
});

test("a duplicate signup is refused with a readable message", async ({ page, auth }) => {
  await page.goto("/signup");
  await auth.fill(alice, password);
  await auth.submit.click();
  await expect(auth.emailError).toContainText("already exists");
});

test("a second user does not see the first user's conversations", async ({ page, auth, chat }) => {
  await auth.signup(bob, password);
  await expect(page.getByTestId("conversation-empty")).toBeVisible();
  await expect(chat.conversationItems).toHaveCount(0);
  await chat.searchInput.fill("octopuses");
  await expect(page.getByTestId("conversation-empty")).toBeVisible();
});

downTest("a request rejected with 401 (token no longer valid) is retried after a silent refresh", async ({ page, auth, chat, downBackend }) => {
  // A backend of our own with accounts, which the test restarts with another signing key.
  await downBackend.start({ OPENCHAT_AUTH: "required" });
  await auth.signup(`dave-${stamp}@example.com`, password);
  await expect(page.getByTestId("conversation-empty")).toBeVisible();
  // The server restarts with a new key (same database): the access token the page holds
  // in memory is now refused with 401, while the refresh cookie is still good.
  await downBackend.stop();
  await downBackend.start({ OPENCHAT_AUTH: "required", OPENCHAT_SECRET_KEY: "e2e-rotated-secret-key-not-for-production-9876543210" });

  const conversationStatuses: number[] = [];
  page.on("response", (response) => {
    if (new URL(response.url()).pathname === "/api/v1/conversations") conversationStatuses.push(response.status());
  });
  const refreshed = page.waitForResponse((r) => r.url().endsWith("/api/v1/auth/refresh"));
  await chat.searchInput.fill("anything");
  expect((await refreshed).ok()).toBe(true);
  await expect(page.getByTestId("conversation-empty")).toBeVisible();
  await expect(page.getByTestId("conversation-empty")).toContainText("No conversations match");
  await expect(page).not.toHaveURL(/\/login/);
  // The search was refused once, then answered after the refresh.
  await expect.poll(() => conversationStatuses).toEqual([401, 200]);
});

expiryTest("access tokens that really expire are renewed without the user noticing", async ({ page, auth, chat }) => {
  // This backend issues 6-second access tokens.
  await auth.signup(`carol-${stamp}@example.com`, password);
  // From here on the user is logged in: count renewals and any rejected request.
  const refreshes: number[] = [];
  const unauthorized: string[] = [];
  page.on("response", (response) => {
    if (response.url().endsWith("/api/v1/auth/refresh") && response.ok()) refreshes.push(Date.now());
    if (response.status() === 401) unauthorized.push(response.url());
  });
  await chat.sendAndWait("Say OK.");
  // Well past the first token's lifetime: it has expired on the server by now.
  await page.waitForTimeout(9_000);
  await chat.sendAndWait("Say OK again.");
  await expect(page).not.toHaveURL(/\/login/);
  await expect(chat.replies).toHaveCount(2);
  expect(refreshes.length).toBeGreaterThanOrEqual(1);
  // Renewed before expiry: the user never hit a rejected request.
  expect(unauthorized).toEqual([]);
});
