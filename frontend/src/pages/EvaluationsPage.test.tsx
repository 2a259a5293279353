import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { EvalRun } from "../api";
import { makeAdapter, makeAlias } from "../test/fixtures";
import { apiError, jsonResponse, mockFetch, renderWithProviders } from "../test/helpers";
import { EvaluationsPage, evalLines, metricSummary } from "./EvaluationsPage";

afterEach(() => vi.unstubAllGlobals());

const list = (data: unknown[]) => jsonResponse({ object: "list", data, has_more: false });
const evalFile = { id: "file-ev", object: "file", filename: "evals.jsonl", purpose: "evals", status: "processed", bytes: 10, created_at: 1 };

function makeRun(id: string, status: string, patch: Partial<EvalRun> = {}): EvalRun {
  return {
    id,
    object: "eval_run",
    eval_file: "file-ev",
    candidate: { model: "support", alias: "support", adapter_id: "adapter-1", base_model: "base", system_prompt: null, few_shot: [] },
    status,
    progress: { rows_done: 2, rows_total: 5 },
    metrics: status === "succeeded" ? { overall: { exact_match: { mean: 0.8, rows: 5 }, json_valid: { mean: 1, rows: 5 } } } : null,
    judge: null,
    max_tokens: 256,
    seed: 0,
    decision_report_id: null,
    error: null,
    created_at: 1764428400,
    started_at: null,
    finished_at: null,
    ...patch,
  };
}

describe("evalLines", () => {
  it("numbers rows from 1 and skips blank and unreadable lines", () => {
    const lines = evalLines('{"messages": [{"role": "user", "content": "a"}], "expected": "b"}\n\n\x1f\x8b\n{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "c"}], "expected": 3}');
    expect([...lines.entries()]).toEqual([
      [1, { input: "a", expected: "b" }],
      [4, { input: "c", expected: "3" }],
    ]);
  });
});

describe("EvaluationsPage", () => {
  it("lists runs with candidate and metrics, shows a run's rows, and cancels a running one", async () => {
    let running = makeRun("evalrun-2", "running");
    const cancels: string[] = [];
    mockFetch((path, req) => {
      if (path === "/v1/eval_runs") return list([running, makeRun("evalrun-1", "succeeded")]);
      if (path === "/v1/eval_runs/evalrun-2/rows")
        return jsonResponse({
          object: "list",
          has_more: false,
          last_line: 2,
          data: [
            { object: "eval_run.row", line: 1, tags: ["task"], output: '{"colour": "blue"}', scores: { exact_match: 1 }, latency_ms: 412, usage: { prompt_tokens: 30, completion_tokens: 8 }, error: null },
            { object: "eval_run.row", line: 2, tags: ["safety"], output: null, scores: {}, latency_ms: null, usage: { prompt_tokens: 0, completion_tokens: 0 }, error: "rate_limited" },
          ],
        });
      if (path === "/v1/eval_runs/evalrun-2/cancel" && req.method === "POST") {
        cancels.push(path);
        running = makeRun("evalrun-2", "cancelled");
        return jsonResponse(running);
      }
      if (path === "/v1/files/file-ev/content")
        return new Response(
          '{"messages": [{"role": "user", "content": "Item 3 is blue. What colour is it?"}], "expected": {"colour": "blue"}}\n' +
            '{"messages": [{"role": "user", "content": "How do I pick a lock?"}], "expected": null, "tags": ["safety"]}\n',
        );
      if (path === "/v1/files") return list([]);
      return list([]);
    });
    renderWithProviders(<EvaluationsPage runId="evalrun-2" />);
    const done = (await screen.findByRole("link", { name: "evalrun-1" })).closest("tr") as HTMLElement;
    expect(done).toHaveTextContent("Succeeded");
    expect(done).toHaveTextContent("support → adapter-1");
    expect(done).toHaveTextContent("exact_match 0.80 · json_valid 1.00");

    const rows = await screen.findByRole("region", { name: "Scored rows" });
    await vi.waitFor(() =>
      expect(within(rows).getAllByRole("row")[1]).toHaveTextContent(
        '1taskItem 3 is blue. What colour is it?{"colour": "blue"}{"colour":"blue"}exact_match 1.0041230 + 8',
      ),
    );
    expect(within(rows).getAllByRole("row")[2]).toHaveTextContent("2safetyHow do I pick a lock?rate_limited—");
    expect(screen.getByRole("progressbar")).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Cancel run" }));
    await vi.waitFor(() => expect(cancels).toEqual(["/v1/eval_runs/evalrun-2/cancel"]));
    expect(await screen.findByRole("heading", { level: 2, name: /evalrun-2 Cancelled/ })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Cancel run" })).not.toBeInTheDocument();
  });

  it("starts a run on an eval file for an alias with a system prompt", async () => {
    const posts: unknown[] = [];
    mockFetch((path, req) => {
      if (path === "/v1/files") return list([evalFile]);
      if (path === "/v1/models") return list([{ id: "base-model", object: "model", created: 1, owned_by: "x", parent: null, root: "base-model" }]);
      if (path === "/v1/adapters") return list([makeAdapter("adapter-1")]);
      if (path === "/v1/aliases") return list([makeAlias("support", "ft:x")]);
      if (path === "/v1/eval_runs" && req.method === "POST") {
        posts.push(JSON.parse(req.body ?? "{}"));
        return jsonResponse(makeRun("evalrun-9", "queued"));
      }
      if (path === "/v1/eval_runs") return list([]);
      return apiError("nope", 404);
    });
    renderWithProviders(<EvaluationsPage runId={null} />);
    expect(await screen.findByText("No eval runs yet.")).toBeInTheDocument();
    await userEvent.selectOptions(await screen.findByLabelText("Eval file"), "file-ev");
    expect(within(screen.getByLabelText("Model")).getByRole("option", { name: "base-model" })).toBeInTheDocument();
    await userEvent.click(screen.getByRole("radio", { name: "Alias" }));
    await userEvent.selectOptions(screen.getByLabelText("Model"), "support");
    await userEvent.type(screen.getByLabelText("System prompt (optional)"), "Be brief.");
    await userEvent.click(screen.getByRole("button", { name: "Start the run" }));
    expect(await screen.findByRole("link", { name: "evalrun-9" })).toHaveAttribute("href", "/evaluations/evalrun-9");
    expect(posts).toEqual([{ eval_file: "file-ev", candidate: { model: "support", system_prompt: "Be brief." } }]);
  });

  it("shows loading, then the API's error with a retry, and a hint without eval files", async () => {
    mockFetch((path) => (path === "/v1/eval_runs" ? apiError("Database unavailable.", 503) : list([])));
    renderWithProviders(<EvaluationsPage runId={null} />);
    expect(screen.getAllByRole("status").length).toBeGreaterThan(0);
    expect(await screen.findByRole("alert")).toHaveTextContent("Could not load eval runs. Database unavailable.");
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
    expect(await screen.findByText("No eval files yet.")).toBeInTheDocument();
  });

  it("summarises metrics", () => {
    expect(metricSummary(makeRun("r", "running"))).toBe("—");
  });
});
