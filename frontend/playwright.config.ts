// Browser tests against a running Loraplex (tests/e2e/test_ui.py starts the real stack and
// runs `npx playwright test` with LORAPLEX_UI_URL, LORAPLEX_UI_API_KEY and
// LORAPLEX_UI_DATASET set). Debian's chromium, no browser download.
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "e2e",
  timeout: 20 * 60 * 1000,
  expect: { timeout: 30_000 },
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  outputDir: "../artifacts/ui/test-results",
  use: {
    baseURL: process.env.LORAPLEX_UI_URL ?? "http://127.0.0.1:8000",
    headless: true,
    viewport: { width: 1280, height: 900 },
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-dev-shm-usage"],
    },
  },
});
