// Every page, checked with axe (WCAG 2.1 A/AA: labels, names, contrast, landmarks) at 1280 px
// and 390 px, keyboard-reachable navigation included. Runs after flow.spec.ts with the same
// tenant, so the pages have content.
import AxeBuilder from "@axe-core/playwright";
import { expect, test, type Page } from "@playwright/test";

const apiKey = process.env.LORAPLEX_UI_API_KEY ?? "";
const PAGES = ["/datasets", "/fine-tunes", "/models", "/playground", "/usage"];

async function signIn(page: Page) {
  await page.goto("/");
  await page.getByLabel("API key").fill(apiKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("banner").getByRole("button", { name: "Sign out" })).toBeVisible();
}

async function axe(page: Page, where: string) {
  const results = await new AxeBuilder({ page })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
    .analyze();
  const problems = results.violations.map(
    (v) => `${where}: ${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`,
  );
  expect(problems).toEqual([]);
}

for (const width of [1280, 390]) {
  test(`pages pass axe at ${width} px`, async ({ page }) => {
    await page.setViewportSize({ width, height: 900 });
    await page.goto("/");
    await axe(page, `sign-in @${width}`);
    await signIn(page);
    for (const path of PAGES) {
      await page.goto(path);
      await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
      await expect(page.locator(".state-loading")).toHaveCount(0, { timeout: 30_000 });
      await axe(page, `${path} @${width}`);
    }
  });
}

test("the main navigation works from the keyboard, with a visible focus", async ({ page }) => {
  await signIn(page);
  await page.keyboard.press("Tab");
  const skip = page.getByRole("link", { name: "Skip to main content" });
  await expect(skip).toBeFocused();
  let reached = false;
  for (let i = 0; i < 10 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.getByRole("link", { name: "Models" }).evaluate((el) => el === document.activeElement);
  }
  expect(reached).toBe(true);
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle);
  expect(outline).not.toBe("none");
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/\/models$/);
  await expect(page.getByRole("heading", { level: 1, name: "Models" })).toBeFocused();
});
