import { act, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { FineTuningJob, JobEvent } from "../api";
import { RouterProvider } from "../router";
import { jsonResponse, mockFetch } from "../test/helpers";
import { JOB_POLL_MS, JobDetailPage } from "./JobDetailPage";

const job = (status: FineTuningJob["status"]): FineTuningJob => ({
  id: "ftjob-1",
  object: "fine_tuning.job",
  model: "SmolLM2-135M-Instruct",
  status,
  created_at: 1_700_000_000,
  finished_at: status === "succeeded" ? 1_700_000_100 : null,
  fine_tuned_model: status === "succeeded" ? "ft:SmolLM2-135M-Instruct:acme:bot:ftjob-1" : null,
  trained_tokens: status === "succeeded" ? 1234 : null,
  training_file: "file-1",
  validation_file: null,
  error: null,
  hyperparameters: { n_epochs: 1, batch_size: 2, learning_rate_multiplier: 1, lora_r: 8 },
  estimated_finish: null,
});

const metrics = (step: number, loss: number): JobEvent => ({
  id: `ev-${step}`,
  object: "fine_tuning.job.event",
  created_at: 1_700_000_000 + step,
  level: "info",
  message: `Step ${step}/10`,
  type: "metrics",
  data: { step, total_steps: 10, train_loss: loss },
});

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

const flush = () => act(async () => {
  await vi.advanceTimersByTimeAsync(0);
});

describe("JobDetailPage", () => {
  it("shows progress from the latest metrics and polls only until the job is terminal", async () => {
    let jobCalls = 0;
    const fetchMock = mockFetch((url) => {
      if (url.startsWith("/v1/fine_tuning/jobs/ftjob-1/events")) {
        const events = jobCalls <= 1 ? [metrics(5, 1.1), metrics(4, 1.4)] : [metrics(10, 0.7), metrics(5, 1.1)];
        return jsonResponse({ object: "list", data: events, has_more: false });
      }
      jobCalls += 1;
      return jsonResponse(job(jobCalls === 1 ? "running" : "succeeded"));
    });

    render(
      <RouterProvider>
        <JobDetailPage jobId="ftjob-1" />
      </RouterProvider>,
    );
    await flush();

    expect(screen.getByRole("progressbar", { name: "Training progress" })).toHaveAttribute(
      "aria-valuenow",
      "5",
    );
    expect(screen.getByText(/Step 5 of 10 \(50%\)/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Cancel job" })).toBeInTheDocument();
    expect(document.querySelector("path.chart-line")).not.toBeNull();

    await act(async () => {
      await vi.advanceTimersByTimeAsync(JOB_POLL_MS);
    });
    expect(screen.getByText("Succeeded")).toBeInTheDocument();
    expect(screen.getByText(/Step 10 of 10 \(100%\)/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Cancel job" })).not.toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Try it in the Playground" })).toBeInTheDocument();

    const callsWhenDone = fetchMock.mock.calls.length;
    expect(callsWhenDone).toBe(4);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(JOB_POLL_MS * 5);
    });
    expect(fetchMock.mock.calls.length).toBe(callsWhenDone);
  });
});
