import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { DecisionReportObject } from "../api";
import { apiError, jsonResponse, mockFetch, renderWithProviders } from "../test/helpers";
import { DecisionReport, pts } from "./DecisionReport";
import { DecisionReportPanel, parseFewShot } from "./DecisionReportPanel";

afterEach(() => vi.unstubAllGlobals());

const delta = (baseline: number, fine_tune: number, lo: number, hi: number, rows = 20) => ({
  baseline, fine_tune, delta: fine_tune - baseline, ci95: [lo, hi], rows,
});

function makeReport(status: string, patch: Partial<DecisionReportObject> = {}): DecisionReportObject {
  return {
    id: "dr-1",
    object: "fine_tuning.job.decision_report",
    fine_tuning_job_id: "ftjob-1",
    adapter_id: "adapter-1",
    eval_files: ["file-ev"],
    status,
    runs: [
      { id: "evalrun-b", role: "baseline", eval_file: "file-ev", status: "succeeded" },
      { id: "evalrun-f", role: "fine_tune", eval_file: "file-ev", status: status === "running" ? "running" : "succeeded" },
    ],
    report:
      status === "succeeded"
        ? {
            verdict: { decision: "ship", message: "behaviour fixed, no regressions — ship" },
            primary_metric: "json_schema_valid",
            groups: {
              task: { json_schema_valid: delta(0.4, 0.9, 0.3, 0.7), exact_match: delta(0.2, 0.25, -0.05, 0.15) },
              regression: { exact_match: delta(0.8, 0.8, -0.02, 0.02, 10) },
              safety: { refusal_correct: delta(1, 0.95, -0.1, 0, 8) },
            },
            cost: {
              baseline: { requests: 38, tokens_per_request: 120, latency_ms_p50: 900, latency_ms_p95: 1500 },
              fine_tune: { requests: 38, tokens_per_request: 60, latency_ms_p50: 450, latency_ms_p95: 800 },
              token_cost_ratio: 0.5,
            },
          }
        : null,
    error: status === "failed" ? { message: "Eval run evalrun-f failed." } : null,
    created_at: 1764428400,
    finished_at: null,
    ...patch,
  };
}

describe("DecisionReport", () => {
  it("renders the verdict in words, metrics with intervals, guarded suites side by side, and cost", () => {
    renderWithProviders(<DecisionReport report={makeReport("succeeded")} />);
    const verdict = screen.getByTestId("verdict");
    expect(verdict).toHaveTextContent("Ship it");
    expect(verdict).toHaveTextContent("behaviour fixed, no regressions — ship");
    const task = screen.getByRole("region", { name: "Task metrics data" });
    const primary = within(task).getByText("json_schema_valid (primary)").closest("tr") as HTMLElement;
    expect(primary).toHaveTextContent("40.0%90.0%+50.0 pts+30.0 pts to +70.0 pts20");
    expect(within(screen.getByRole("region", { name: "Safety probes data" })).getByText("−5.0 pts")).toBeInTheDocument();
    expect(screen.getByRole("region", { name: "Regression suite data" })).toHaveTextContent("±0.0 pts");
    const cost = screen.getByRole("region", { name: "Cost per request" });
    expect(cost).toHaveTextContent("0.50× the base's tokens");
    expect(within(cost).getByText("Tokens per request").closest("tr")).toHaveTextContent("120.060.0");
  });

  it("renders nothing without a report, the status while running, the error when failed", () => {
    const { container, rerender } = renderWithProviders(<DecisionReport report={null} />);
    expect(container).toBeEmptyDOMElement();
    rerender(<DecisionReport report={makeReport("running")} />);
    expect(screen.getByText("Running")).toBeInTheDocument();
    rerender(<DecisionReport report={makeReport("failed")} />);
    expect(screen.getByRole("alert")).toHaveTextContent("Eval run evalrun-f failed.");
  });

  it("formats points", () => {
    expect(pts(0.123)).toBe("+12.3 pts");
    expect(pts(-0.02)).toBe("−2.0 pts");
    expect(pts(0)).toBe("±0.0 pts");
  });
});

describe("parseFewShot", () => {
  it("reads role-prefixed lines and names the bad line", () => {
    expect(parseFewShot("user: hi\n\nAssistant: {\"a\": 1}")).toEqual([
      { role: "user", content: "hi" },
      { role: "assistant", content: '{"a": 1}' },
    ]);
    expect(parseFewShot("user: hi\nhello")).toBe('Line 2: start it with "user:" or "assistant:".');
  });
});

const evalFile = { id: "file-ev", object: "file", filename: "evals.jsonl", purpose: "evals", status: "processed", bytes: 10, created_at: 1 };
const trainFile = { ...evalFile, id: "file-tr", filename: "train.jsonl", purpose: "fine-tune" };

describe("DecisionReportPanel", () => {
  it("runs a report on the picked eval files and follows it to the verdict", async () => {
    let current: DecisionReportObject | null = null;
    const posts: unknown[] = [];
    mockFetch((path, req) => {
      if (path === "/v1/files") return jsonResponse({ object: "list", data: [evalFile, trainFile], has_more: false });
      if (path === "/v1/fine_tuning/jobs/ftjob-1/decision_report" && req.method === "POST") {
        posts.push(JSON.parse(req.body ?? "{}"));
        current = makeReport("running");
        return jsonResponse(current);
      }
      if (path === "/v1/eval_runs/evalrun-f")
        return jsonResponse({ id: "evalrun-f", status: "running", progress: { rows_done: 3, rows_total: 8 } });
      if (path === "/v1/eval_runs/evalrun-b")
        return jsonResponse({ id: "evalrun-b", status: "succeeded", progress: { rows_done: 8, rows_total: 8 } });
      if (path === "/v1/fine_tuning/jobs/ftjob-1/decision_report") {
        if (!current) return apiError("No decision report yet.", 404);
        current = makeReport("succeeded");
        return jsonResponse(current);
      }
      return apiError("nope", 404);
    });
    renderWithProviders(<DecisionReportPanel jobId="ftjob-1" />);
    const box = await screen.findByRole("checkbox", { name: /evals\.jsonl/ });
    expect(screen.queryByRole("checkbox", { name: /train\.jsonl/ })).not.toBeInTheDocument();
    const submit = screen.getByRole("button", { name: "Run the decision report" });
    expect(submit).toBeDisabled();
    await userEvent.click(box);
    await userEvent.type(screen.getByLabelText("Base system prompt (optional)"), "Answer in JSON.");
    await userEvent.type(screen.getByLabelText("Few-shot examples for the base (optional)"), "oops");
    await userEvent.click(submit);
    expect(await screen.findByRole("alert")).toHaveTextContent("Line 1");
    expect(posts).toEqual([]);
    await userEvent.clear(screen.getByLabelText("Few-shot examples for the base (optional)"));
    await userEvent.type(screen.getByLabelText("Few-shot examples for the base (optional)"), "user: q\nassistant: a");
    await userEvent.click(submit);
    expect(await screen.findByRole("list", { name: "Eval runs" })).toHaveTextContent("Fine-tune on file-ev");
    expect(await screen.findByRole("progressbar", { name: "Fine-tune on file-ev" })).toHaveAttribute("aria-valuetext", "3 of 8 rows");
    expect(posts).toEqual([
      { eval_files: ["file-ev"], system_prompt: "Answer in JSON.", few_shot: [{ role: "user", content: "q" }, { role: "assistant", content: "a" }] },
    ]);
    expect(await screen.findByTestId("verdict", {}, { timeout: 6000 })).toHaveTextContent("Ship it");
  }, 10000);

  it("points at the Datasets page when there are no eval files, and shows a refusal", async () => {
    mockFetch((path) => {
      if (path === "/v1/files") return jsonResponse({ object: "list", data: [trainFile], has_more: false });
      return apiError("No decision report yet.", 404);
    });
    const { unmount } = renderWithProviders(<DecisionReportPanel jobId="ftjob-1" />);
    expect(screen.getAllByRole("status").length).toBeGreaterThan(0);
    expect(await screen.findByText("No eval files yet.")).toBeInTheDocument();
    unmount();
    mockFetch((path) => {
      if (path === "/v1/files") return apiError("The API is down.", 503);
      return apiError("No decision report yet.", 404);
    });
    renderWithProviders(<DecisionReportPanel jobId="ftjob-1" />);
    expect(await screen.findByRole("alert")).toHaveTextContent("The API is down.");
  });
});
