// Sign in → upload → report → start a job → watch it finish with a loss curve → chat with the
// adapter → promote it to an alias, read its history, download the adapter, in a real browser against the real platform.
import { expect, test, type Page } from "@playwright/test";
import { readFileSync } from "node:fs";
import path from "node:path";

const apiKey = process.env.LORAPLEX_UI_API_KEY ?? "";
const datasetPath = process.env.LORAPLEX_UI_DATASET ?? "";
const validationPath = process.env.LORAPLEX_UI_VALIDATION ?? "";
const shots = process.env.LORAPLEX_UI_ARTIFACTS ?? path.resolve("..", "artifacts", "ui");
const JOB_TIMEOUT = 15 * 60 * 1000;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

async function shot(page: Page, name: string) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

/** Drops a file on the upload zone, as a person dragging it from their desktop does. */
async function dropFile(page: Page, filePath: string) {
  const content = readFileSync(filePath, "utf8");
  const name = path.basename(filePath);
  const dataTransfer = await page.evaluateHandle(
    ([text, fileName]) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], fileName, { type: "application/jsonl" }));
      return dt;
    },
    [content, name] as const,
  );
  await page.dispatchEvent(".dropzone", "dragenter", { dataTransfer });
  await page.dispatchEvent(".dropzone", "drop", { dataTransfer });
}

test("a product team's whole fine-tune, from sign-in to an alias", async ({ page }) => {
  expect(apiKey, "LORAPLEX_UI_API_KEY must be set").not.toBe("");
  expect(datasetPath, "LORAPLEX_UI_DATASET must be set").not.toBe("");
  expect(validationPath, "LORAPLEX_UI_VALIDATION must be set").not.toBe("");
  const fileName = path.basename(datasetPath);

  // Sign in.
  await page.goto("/");
  await expect(page.getByRole("heading", { name: /sign in/i })).toBeVisible();
  await shot(page, "01-sign-in");
  await page.getByLabel("API key").fill("lpx-wrong-key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText(/API key/i);
  await page.getByLabel("API key").fill(apiKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  const header = page.getByRole("banner");
  await expect(header.getByRole("button", { name: "Sign out" })).toBeVisible();
  await expect(header).toContainText(process.env.LORAPLEX_UI_TENANT ?? "");
  await expect(page).toHaveURL(/\/datasets$/);

  // Upload by drag and drop; the quality report follows.
  await dropFile(page, datasetPath);
  await expect(page.getByText(/Selected:/)).toContainText(fileName);
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await expect(page.locator(".upload-result")).toContainText(`Uploaded ${fileName}`);
  await page.getByRole("link", { name: new RegExp(escape(fileName)) }).click();
  await expect(page.getByRole("heading", { name: "Token lengths" })).toBeVisible({ timeout: 120_000 });
  await expect(page.getByText("Rows by token length")).toBeVisible();
  await expect(page.getByRole("heading", { name: "Personal data" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Sample rows to review" })).toBeVisible();
  await shot(page, "02-datasets-report");

  // A validation file too, so the job reports validation loss.
  const validationName = path.basename(validationPath);
  await dropFile(page, validationPath);
  await page.getByRole("button", { name: "Upload", exact: true }).click();
  await expect(page.locator(".upload-result")).toContainText(`Uploaded ${validationName}`);
  await page.getByRole("link", { name: new RegExp(escape(validationName)) }).click();
  await expect(page.getByRole("heading", { name: `Report: ${validationName}` })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Token lengths" })).toBeVisible({ timeout: 120_000 });
  await page.getByRole("link", { name: new RegExp(escape(fileName)) }).click();
  await expect(page.getByRole("heading", { name: `Report: ${fileName}` })).toBeVisible();

  // A new fine-tune with the advanced settings, and its live estimate.
  await page.getByRole("link", { name: "Fine-tune with this file" }).click();
  await expect(page).toHaveURL(/\/fine-tunes\?training_file=/);
  await page.getByLabel("Validation file").selectOption({ label: validationName });
  await page.getByLabel("Suffix").fill("colours");
  await page.getByText("Advanced").click();
  await page.getByLabel("Epochs").fill("1");
  await page.getByLabel("Batch size").fill("2");
  await page.getByLabel("Learning rate multiplier").fill("10");
  await page.getByLabel("LoRA rank").fill("8");
  await expect(page.getByTestId("estimate-tokens")).not.toHaveText("—");
  await shot(page, "03-new-fine-tune");
  await page.getByRole("button", { name: "Start fine-tune" }).click();

  // The job page follows the job live until it succeeds, with a loss curve.
  await expect(page).toHaveURL(/\/fine-tunes\/ftjob-/);
  await expect(page.getByRole("list", { name: "Job status timeline" })).toBeVisible();
  await expect(page.getByRole("progressbar", { name: "Training progress" })).toBeVisible({ timeout: JOB_TIMEOUT });
  await shot(page, "04-job-running");
  await expect(page.locator(".badge", { hasText: "Succeeded" })).toBeVisible({ timeout: JOB_TIMEOUT });
  await page.getByText("Show the data as a table").first().click();
  const lossRows = page.getByRole("region", { name: "Loss by step data" }).getByRole("row");
  expect(await lossRows.count()).toBeGreaterThan(3);
  // The last step carries the epoch's validation loss.
  await expect(lossRows.last()).not.toContainText("—");
  await expect(page.locator(".chart-canvas svg .recharts-line").first()).toBeVisible();
  const checkpointRows = page.getByRole("region", { name: "Checkpoints" }).getByRole("row");
  await expect(checkpointRows.nth(1)).toContainText("ft:");
  await shot(page, "05-job-succeeded");
  const model = (await page.getByRole("heading", { level: 1 }).innerText()).trim();
  expect(model).toMatch(/^ft:SmolLM2-135M-Instruct:.+:colours:/);

  // Chat with the adapter next to the base model, and rate the answer.
  await page.getByRole("link", { name: "Try it in the Playground" }).click();
  await expect(page.getByLabel("Right model", { exact: true })).toHaveValue(model);
  await page.getByLabel("Message", { exact: true }).fill("Item 3 is blue. What colour is it?");
  await page.getByRole("button", { name: "Send" }).click();
  const right = page.locator('[data-side="right"] .message-assistant .message-content');
  const left = page.locator('[data-side="left"] .message-assistant .message-content');
  await expect(right).not.toHaveText(/Thinking|^$/, { timeout: 180_000 });
  await expect(left).not.toHaveText(/Thinking|^$/, { timeout: 180_000 });
  await expect(page.getByRole("button", { name: "Send" })).toBeVisible({ timeout: 180_000 });
  const good = page.locator('[data-side="right"]').getByRole("button", { name: /Good answer/ });
  await good.click();
  await expect(good).toHaveAttribute("aria-pressed", "true");
  await expect(page.locator('[data-side="right"] .field-error')).toHaveCount(0);
  await shot(page, "06-playground");

  // Promote the adapter to an alias.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Models" }).click();
  await expect(page.getByRole("heading", { level: 2, name: model })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Lineage" })).toBeVisible();
  await page.getByLabel("Alias name").fill("colours-prod");
  await page.getByRole("button", { name: "Promote" }).click();
  await expect(page.getByTestId("alias-target-colours-prod")).toHaveText(model);
  await page.getByRole("button", { name: "History of colours-prod" }).click();
  await expect(page.getByRole("list", { name: "History of colours-prod" }).getByRole("listitem").first()).toContainText(
    "v1 · Created",
  );
  // The adapter's zip: its files, manifest and lineage.
  const downloading = page.waitForEvent("download");
  await page.getByRole("button", { name: "Download adapter (zip)" }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toMatch(/^adapter-.+\.zip$/);
  const zip = readFileSync(await download.path());
  expect(zip.subarray(0, 2).toString()).toBe("PK");
  expect(zip.includes(Buffer.from("manifest.json"))).toBe(true);
  await shot(page, "07-models");

  // Usage and drift, then the narrow (phone) layout of two pages.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Usage" }).click();
  await expect(page.getByRole("heading", { name: "Thumbs-down trend" })).toBeVisible();
  await expect(page.getByText("Requests per day")).toBeVisible({ timeout: 60_000 });
  await shot(page, "08-usage");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Datasets" }).click();
  await shot(page, "09-datasets-390px");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Playground" }).click();
  await shot(page, "10-playground-390px");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Evaluations" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Evaluations" })).toBeVisible();
  await expect(page.getByText("No eval runs yet.")).toBeVisible();
  await shot(page, "11-evaluations-390px");

  await header.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByLabel("API key")).toBeVisible();
});
