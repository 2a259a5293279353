import { screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { makeJob, messageEvent, metricsEvent } from "../test/fixtures";
import { jsonResponse, mockFetch, renderWithProviders, sseResponse } from "../test/helpers";
import { etaSeconds, JobDetailPage } from "./JobDetailPage";

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("JobDetailPage", () => {
  it("follows the job's event stream: status, progress, loss curve data, events, checkpoints", async () => {
    const fetchMock = mockFetch((path, req) => {
      if (path === "/v1/fine_tuning/jobs/ftjob-1/events") {
        expect(req.search).toContain("stream=true");
        return sseResponse([
          ["job", makeJob("running")],
          [null, messageEvent("ftevent-0000", "Created fine-tuning job: ftjob-1")],
          [null, metricsEvent(1, 2.5, 2.7)],
          [null, metricsEvent(4, 1.25, 1.5)],
          ["job", makeJob("succeeded")],
        ]);
      }
      if (path === "/v1/fine_tuning/jobs/ftjob-1/checkpoints") {
        return jsonResponse({
          object: "list",
          has_more: false,
          data: [
            {
              id: "ftckpt-1",
              object: "fine_tuning.job.checkpoint",
              created_at: 1_700_000_050,
              fine_tuned_model_checkpoint: "ft:SmolLM2-135M-Instruct:acme:bot:ftjob-1:ckpt-step-10",
              fine_tuning_job_id: "ftjob-1",
              metrics: { train_loss: 1.1 },
              step_number: 10,
            },
          ],
        });
      }
      return jsonResponse({ error: { message: "nope", type: "x", param: null, code: null } }, 404);
    });
    renderWithProviders(<JobDetailPage jobId="ftjob-1" />);

    expect(await screen.findByRole("heading", { level: 1, name: /ft:SmolLM2-135M-Instruct:acme:bot/ })).toBeInTheDocument();
    expect(screen.getByText("Succeeded", { selector: ".badge" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Cancel job" })).not.toBeInTheDocument();
    // The loss curve's data table has both series, by step.
    const lossTable = await screen.findByRole("region", { name: "Loss by step data" });
    const rows = within(lossTable).getAllByRole("row");
    expect(rows.map((r) => r.textContent)).toEqual([
      "StepTrain lossValidation loss",
      "12.5002.700",
      "41.2501.500",
    ]);
    expect(screen.getByRole("progressbar", { name: "Training progress" })).toHaveAttribute("aria-valuenow", "4");
    expect(await screen.findByText("ft:SmolLM2-135M-Instruct:acme:bot:ftjob-1:ckpt-step-10")).toBeInTheDocument();
    expect(screen.getByText("Created fine-tuning job: ftjob-1")).toBeInTheDocument();
    const timeline = screen.getByRole("list", { name: "Job status timeline" });
    expect(within(timeline).getByText("Succeeded").closest("li")).toHaveAttribute("aria-current", "step");
    // A terminal job's stream is not reopened.
    const streams = fetchMock.mock.calls.filter(([input]) =>
      String(input instanceof Request ? input.url : input).includes("/events"),
    );
    expect(streams).toHaveLength(1);
  });

  it.each([
    { hp: { n_gpus: 2, parallelism: "fsdp" }, gpus: "2", parallelism: "Sharded (FSDP)" },
    { hp: { n_gpus: 4, parallelism: "ddp" }, gpus: "4", parallelism: "Data parallel (DDP)" },
    // One GPU splits nothing: no parallelism row.
    { hp: { n_gpus: 1, parallelism: "ddp" }, gpus: "1", parallelism: null },
  ])("lists GPUs $gpus and parallelism $parallelism among the hyperparameters", async ({ hp, gpus, parallelism }) => {
    const job = makeJob("succeeded", { hyperparameters: { n_epochs: 1, batch_size: 2, learning_rate_multiplier: 1, lora_r: 8, ...hp } });
    mockFetch((path) => {
      if (path === "/v1/fine_tuning/jobs/ftjob-1/events") return sseResponse([["job", job]]);
      if (path === "/v1/fine_tuning/jobs/ftjob-1/checkpoints") return jsonResponse({ object: "list", has_more: false, data: [] });
      return jsonResponse({ error: { message: "nope", type: "x", param: null, code: null } }, 404);
    });
    renderWithProviders(<JobDetailPage jobId="ftjob-1" />);

    const fact = (term: string) => screen.queryByText(term, { selector: "dt" })?.nextElementSibling ?? null;
    await vi.waitFor(() => expect(fact("GPUs")).toHaveTextContent(gpus));
    expect(fact("LoRA rank")).toHaveTextContent("8");
    if (parallelism) expect(fact("Parallelism")).toHaveTextContent(parallelism);
    else expect(screen.queryByText("Parallelism", { selector: "dt" })).not.toBeInTheDocument();
  });

  it("shows the API's error message when the job does not exist", async () => {
    mockFetch(() =>
      jsonResponse(
        { error: { message: "No such fine-tuning job: 'ftjob-x'.", type: "invalid_request_error", param: null, code: "fine_tuning_job_not_found" } },
        404,
      ),
    );
    renderWithProviders(<JobDetailPage jobId="ftjob-x" />);
    expect(await screen.findByRole("alert")).toHaveTextContent("No such fine-tuning job: 'ftjob-x'.");
  });
});

describe("etaSeconds", () => {
  it("extrapolates the pace of the reported steps", () => {
    // Steps 1 → 4 took 30 s (10 s a step); 6 steps of 10 remain.
    expect(etaSeconds([metricsEvent(1, 2), metricsEvent(4, 1)])).toBe(60);
  });
  it("is unknown with a single step", () => {
    expect(etaSeconds([metricsEvent(1, 2)])).toBeNull();
  });
});
