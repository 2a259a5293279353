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
const baseModel = { id: "SmolLM2-135M-Instruct", object: "model", created: 1, owned_by: "loraplex" };

/** Answers the form's lookups; POST /v1/fine_tuning/jobs goes to `onCreate`. */
function mockApi(onCreate: (body: Record<string, unknown>) => Response) {
  return mockFetch((path, req) => {
    if (path === "/v1/models") return jsonResponse({ object: "list", has_more: false, data: [baseModel] });
    if (path === "/v1/files") return jsonResponse({ object: "list", has_more: false, data: [file] });
    if (path === "/v1/fine_tuning/jobs" && req.method === "POST") return onCreate(JSON.parse(req.body ?? "{}"));
    return jsonResponse({ object: "list", has_more: false, data: [] });
  });
}

const posts = (fetchMock: ReturnType<typeof mockFetch>) =>
  fetchMock.mock.calls.filter(([input, init]) => (input instanceof Request ? input.method : init?.method) === "POST");

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

  it.each([
    { gpus: "2", choose: "Sharded (FSDP)", sent: { n_gpus: 2, parallelism: "fsdp" } },
    { gpus: "4", choose: null, sent: { n_gpus: 4, parallelism: "ddp" } },
    // One GPU splits nothing: the default parallelism is left to the server.
    { gpus: "1", choose: null, sent: { n_gpus: 1 } },
    { gpus: "", choose: null, sent: {} },
  ])("sends GPUs $gpus and parallelism $choose as $sent", async ({ gpus, choose, sent }) => {
    let created: Record<string, unknown> | null = null;
    mockApi((body) => {
      created = body;
      return jsonResponse(makeJob("validating_files", { id: "ftjob-new" }));
    });
    renderWithProviders(<FineTunesPage />);
    await userEvent.click(await screen.findByText("Advanced"));
    const parallelism = screen.getByLabelText("Parallelism");
    expect(parallelism).toHaveValue("ddp");
    expect(parallelism).toHaveAccessibleDescription(/FSDP shards it .* needs 2 or more GPUs/);
    if (gpus) await userEvent.type(screen.getByLabelText("GPUs"), gpus);
    if (choose) await userEvent.selectOptions(parallelism, choose);
    await userEvent.click(screen.getByRole("button", { name: "Start fine-tune" }));

    await vi.waitFor(() => expect(window.location.pathname).toBe("/fine-tunes/ftjob-new"));
    expect(created).toEqual({
      model: "SmolLM2-135M-Instruct",
      training_file: "file-1",
      method: { type: "supervised", supervised: { hyperparameters: sent } },
    });
  });

  it.each([
    { gpus: "", why: "GPUs left empty" },
    { gpus: "1", why: "one GPU" },
  ])("refuses Sharded (FSDP) with $why without sending, on the Parallelism field", async ({ gpus }) => {
    const fetchMock = mockApi(() => jsonResponse(makeJob("validating_files", { id: "ftjob-new" })));
    renderWithProviders(<FineTunesPage />);
    await userEvent.click(await screen.findByText("Advanced"));
    if (gpus) await userEvent.type(screen.getByLabelText("GPUs"), gpus);
    await userEvent.selectOptions(screen.getByLabelText("Parallelism"), "Sharded (FSDP)");
    await userEvent.click(screen.getByRole("button", { name: "Start fine-tune" }));

    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Sharded (FSDP) needs 2 or more GPUs");
    const field = screen.getByLabelText("Parallelism");
    expect(field).toHaveFocus();
    expect(field).toHaveAttribute("aria-invalid", "true");
    expect(field.getAttribute("aria-describedby")?.split(" ")).toContain(alert.id);
    expect(screen.getByLabelText("GPUs")).not.toHaveAttribute("aria-invalid");
    expect(posts(fetchMock)).toHaveLength(0);
    expect(window.location.pathname).toBe("/");
  });

  it("refuses a GPU count that is not a positive whole number without sending", async () => {
    const fetchMock = mockApi(() => jsonResponse(makeJob("validating_files", { id: "ftjob-new" })));
    renderWithProviders(<FineTunesPage />);
    await userEvent.click(await screen.findByText("Advanced"));
    await userEvent.type(screen.getByLabelText("GPUs"), "1.5");
    await userEvent.click(screen.getByRole("button", { name: "Start fine-tune" }));

    expect(await screen.findByRole("alert")).toHaveTextContent("GPUs must be a positive whole number.");
    expect(screen.getByLabelText("GPUs")).toHaveFocus();
    expect(screen.getByLabelText("GPUs")).toHaveAttribute("aria-invalid", "true");
    expect(posts(fetchMock)).toHaveLength(0);
  });

  it.each([
    {
      field: "Parallelism",
      gpus: "2",
      param: "method.supervised.hyperparameters.parallelism",
      message: "Input should be 'ddp' or 'fsdp' (param: method.supervised.hyperparameters.parallelism)",
    },
    {
      field: "GPUs",
      gpus: "9",
      param: "method.supervised.hyperparameters.n_gpus",
      message: "Input should be less than or equal to 8 (param: method.supervised.hyperparameters.n_gpus)",
    },
  ])("opens Advanced and focuses $field when the API's refusal names $param", async ({ field, gpus, param, message }) => {
    mockApi(() => jsonResponse({ error: { message, type: "invalid_request_error", param, code: "invalid_value" } }, 400));
    const { container } = renderWithProviders(<FineTunesPage />);
    await userEvent.click(await screen.findByText("Advanced"));
    await userEvent.type(screen.getByLabelText("GPUs"), gpus);
    // Closed again: the error has to open it.
    await userEvent.click(screen.getByText("Advanced"));
    const advanced = container.querySelector("details.advanced");
    expect(advanced).not.toHaveAttribute("open");
    await userEvent.click(screen.getByRole("button", { name: "Start fine-tune" }));

    expect(await screen.findByRole("alert")).toHaveTextContent(message);
    expect(advanced).toHaveAttribute("open");
    expect(screen.getByLabelText(field)).toHaveFocus();
    expect(screen.getByLabelText(field)).toHaveAttribute("aria-invalid", "true");
    const other = field === "GPUs" ? "Parallelism" : "GPUs";
    expect(screen.getByLabelText(other)).not.toHaveAttribute("aria-invalid");
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
