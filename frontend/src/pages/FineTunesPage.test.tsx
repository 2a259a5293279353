import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { makeJob } from "../test/fixtures";
import { jsonResponse, mockFetch, renderWithProviders } from "../test/helpers";
import { FineTunesPage } from "./FineTunesPage";

afterEach(() => {
  vi.unstubAllGlobals();
  window.history.replaceState(null, "", "/");
});

const file = { id: "file-1", object: "file", bytes: 10, created_at: 1, filename: "train.jsonl", purpose: "fine-tune", status: "processed", status_details: null, sha256: "00" };

describe("FineTunesPage", () => {
  it("estimates tokens and time live, and sends the advanced settings", async () => {
    let created: Record<string, unknown> | null = null;
    mockFetch((path, req) => {
      if (path === "/v1/models") return jsonResponse({ object: "list", has_more: false, data: [{ id: "SmolLM2-135M-Instruct", object: "model", created: 1, owned_by: "loraplex" }] });
      if (path === "/v1/files") return jsonResponse({ object: "list", has_more: false, data: [file] });
      if (path === "/v1/fine_tuning/jobs" && req.method === "GET") return jsonResponse({ object: "list", has_more: false, data: [] });
      if (path === "/v1/files/file-1/report") {
        return jsonResponse({
          object: "file.report",
          file_id: "file-1",
          status: "processed",
          report: { estimate: { n_epochs: 3, tokens_per_epoch: 1000, total_training_tokens: 3000, tokens_per_second: 250, expected_duration_seconds: 12, worker_class: "cpu-2core" } },
        });
      }
      if (path === "/v1/fine_tuning/jobs" && req.method === "POST") {
        created = JSON.parse(req.body ?? "{}");
        return jsonResponse(makeJob("validating_files", { id: "ftjob-new" }));
      }
      return jsonResponse({ error: { message: "nope", type: "x", param: null, code: null } }, 404);
    });
    renderWithProviders(<FineTunesPage />);

    // Three epochs by default: 3000 tokens at 250 tokens/s.
    expect(await screen.findByTestId("estimate-tokens")).toHaveTextContent("3,000");
    expect(screen.getByTestId("estimate-time")).toHaveTextContent("12 s");

    await userEvent.click(screen.getByText("Advanced"));
    await userEvent.type(screen.getByLabelText("Epochs"), "10");
    expect(screen.getByTestId("estimate-tokens")).toHaveTextContent("10,000");
    expect(screen.getByTestId("estimate-time")).toHaveTextContent("40 s");
    await userEvent.type(screen.getByLabelText("LoRA rank"), "8");
    expect(screen.getByLabelText("LoRA alpha")).toHaveAttribute("placeholder", "16");
    await userEvent.type(screen.getByLabelText("LoRA alpha"), "32");
    await userEvent.type(screen.getByLabelText("Learning rate multiplier"), "2");
    await userEvent.type(screen.getByLabelText("Max length (tokens)"), "512");
    await userEvent.click(screen.getByRole("button", { name: "Start fine-tune" }));

    await vi.waitFor(() => expect(window.location.pathname).toBe("/fine-tunes/ftjob-new"));
    expect(created).toEqual({
      model: "SmolLM2-135M-Instruct",
      training_file: "file-1",
      method: {
        type: "supervised",
        supervised: { hyperparameters: { n_epochs: 10, lora_r: 8, lora_alpha: 32, learning_rate_multiplier: 2, max_seq_length: 512 } },
      },
    });
  });

  it("puts the API's refusal next to the field it names", async () => {
    mockFetch((path, req) => {
      if (path === "/v1/models") return jsonResponse({ object: "list", has_more: false, data: [{ id: "SmolLM2-135M-Instruct", object: "model", created: 1, owned_by: "loraplex" }] });
      if (path === "/v1/files") return jsonResponse({ object: "list", has_more: false, data: [file] });
      if (path === "/v1/fine_tuning/jobs" && req.method === "POST") {
        return jsonResponse(
          { error: { message: "lora_r must be <= 64, the largest rank the serving engine is started with.", type: "invalid_request_error", param: "hyperparameters.lora_r", code: "invalid_value" } },
          400,
        );
      }
      return jsonResponse({ object: "list", has_more: false, data: [] });
    });
    renderWithProviders(<FineTunesPage />);
    await userEvent.click(await screen.findByText("Advanced"));
    await userEvent.type(screen.getByLabelText("LoRA rank"), "60");
    await userEvent.click(screen.getByRole("button", { name: "Start fine-tune" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("lora_r must be <= 64");
    expect(screen.getByLabelText("LoRA rank")).toHaveFocus();
    expect(screen.getByLabelText("LoRA rank")).toHaveAttribute("aria-invalid", "true");
  });
});
