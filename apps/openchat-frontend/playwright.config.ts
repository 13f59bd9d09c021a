import { defineConfig, devices } from "@playwright/test";

/**
 * End-to-end tests against the real backend and the bundled 0.5B model.
 * `tests/e2e/global-setup.ts` starts real backends (auth off, auth required, 6-second tokens,
 * a queue of zero) on free ports with fresh temporary SQLite databases, the standalone Next.js
 * server (`.next/standalone/server.js`) in front of each, and one whose backend is down. Tests may
 * start their own backend.
 * Run `npm run build` first. Debian's Chromium is used; no browser is downloaded.
 */
export default defineConfig({
  testDir: "tests/e2e",
  projects: [
    // Runs first, whatever the filter: without the server's static files nothing else can pass.
    { name: "standalone-server", testMatch: "standalone-server.setup.ts" },
    { name: "chromium", testMatch: "**/*.spec.ts", dependencies: ["standalone-server"] },
  ],
  workers: 1, // the local model serves one request at a time
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 20_000 },
  reporter: [["list"]],
  outputDir: "test-results/artifacts",
  globalSetup: "./tests/e2e/global-setup.ts",
  use: {
    ...devices["Desktop Chrome"],
    viewport: { width: 1366, height: 860 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
      ],
    },
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    actionTimeout: 15_000,
  },
});
