// The job page's decision report: pick eval files, a base system prompt and optional few-shot
// examples, run it, follow it, and read it.
import { useMutation, useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { createDecisionReport, getDecisionReport, getEvalRun, listFiles, type FewShot } from "../api";
import { DecisionReport } from "./DecisionReport";
import { ProgressBar } from "./ProgressBar";
import { StatusBadge } from "./StatusBadge";
import { Empty, ErrorMessage, Loading } from "./States";

/** Few-shot examples as typed: alternating "user: …" / "assistant: …" lines. */
export function parseFewShot(text: string): FewShot | string {
  const out: FewShot = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^(user|assistant):\s*(.+)$/i.exec(line);
    if (!m) return `Line ${i + 1}: start it with "user:" or "assistant:".`;
    out.push({ role: (m[1] ?? "").toLowerCase() as "user" | "assistant", content: m[2] ?? "" });
  }
  return out;
}

export function DecisionReportPanel({ jobId }: { jobId: string }) {
  const id = useId();
  const client = useQueryClient();
  const [picked, setPicked] = useState<string[]>([]);
  const [systemPrompt, setSystemPrompt] = useState("");
  const [fewShot, setFewShot] = useState("");
  const [formError, setFormError] = useState<string | null>(null);
  const files = useQuery({ queryKey: ["files"], queryFn: ({ signal }) => listFiles(signal) });
  const report = useQuery({
    queryKey: ["decision-report", jobId],
    queryFn: ({ signal }) => getDecisionReport(jobId, signal),
    refetchInterval: (q) => (q.state.data?.status === "running" ? 3000 : false),
  });
  const run = useMutation({
    mutationFn: (examples: FewShot) =>
      createDecisionReport(jobId, {
        eval_files: picked,
        system_prompt: systemPrompt.trim() || null,
        few_shot: examples,
      }),
    onSuccess: (r) => client.setQueryData(["decision-report", jobId], r),
  });
  const running = report.data?.status === "running";
  const runIds = running ? (report.data?.runs ?? []).map((r) => r.id ?? "") : [];
  const progress = useQueries({
    queries: runIds.map((runId) => ({
      queryKey: ["eval-run", runId],
      queryFn: ({ signal }: { signal: AbortSignal }) => getEvalRun(runId, signal),
      refetchInterval: 3000,
    })),
  });
  const evalFiles = (files.data?.data ?? []).filter((f) => f.purpose === "evals" && f.status === "processed");
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    const examples = parseFewShot(fewShot);
    if (typeof examples === "string") {
      setFormError(examples);
      return;
    }
    setFormError(null);
    if (picked.length) run.mutate(examples);
  };
  return (
    <section className="card" aria-labelledby={`${id}-heading`}>
      <h2 id={`${id}-heading`}>Decision report</h2>
      <p className="lede">
        Runs each eval file on the base model (with your system prompt and examples) and on this fine-tune, then
        says whether the fine-tune is worth shipping.
      </p>
      {files.isPending ? (
        <Loading label="Loading eval files…" />
      ) : files.isError ? (
        <ErrorMessage error={files.error} title="Could not load eval files." onRetry={() => void files.refetch()} />
      ) : evalFiles.length === 0 ? (
        <Empty title="No eval files yet.">
          <p>Upload one on the Datasets page with the purpose “evals”.</p>
        </Empty>
      ) : (
        <form className="form" onSubmit={onSubmit}>
          <fieldset className="field">
            <legend>Eval files</legend>
            {evalFiles.map((f) => (
              <label key={f.id} className="checkbox">
                <input
                  type="checkbox"
                  checked={picked.includes(f.id)}
                  onChange={(e) =>
                    setPicked(e.target.checked ? [...picked, f.id] : picked.filter((p) => p !== f.id))
                  }
                />{" "}
                {f.filename} <span className="mono">{f.id}</span>
              </label>
            ))}
          </fieldset>
          <div className="field">
            <label htmlFor={`${id}-system`}>Base system prompt (optional)</label>
            <textarea id={`${id}-system`} rows={3} value={systemPrompt} onChange={(e) => setSystemPrompt(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor={`${id}-few`}>Few-shot examples for the base (optional)</label>
            <textarea
              id={`${id}-few`}
              rows={3}
              value={fewShot}
              aria-describedby={`${id}-few-hint`}
              aria-invalid={formError ? true : undefined}
              onChange={(e) => setFewShot(e.target.value)}
            />
            <p className="hint" id={`${id}-few-hint`}>
              One message a line: “user: …” then “assistant: …”.
            </p>
          </div>
          {formError ? (
            <p className="state state-error" role="alert">
              {formError}
            </p>
          ) : null}
          <div className="form-actions">
            <button type="submit" className="button button-primary" disabled={run.isPending || running || picked.length === 0}>
              {run.isPending ? "Starting…" : "Run the decision report"}
            </button>
          </div>
          {run.isError ? <ErrorMessage error={run.error} title="Could not start the report." /> : null}
        </form>
      )}
      {report.isPending ? (
        <Loading label="Loading the decision report…" />
      ) : report.isError ? (
        <ErrorMessage error={report.error} title="Could not load the decision report." onRetry={() => void report.refetch()} />
      ) : report.data ? (
        <>
          {report.data.status === "running" ? (
            <ul className="item-list" aria-label="Eval runs" aria-live="polite">
              {report.data.runs.map((r, i) => {
                const live = progress[i]?.data;
                const label = `${r.role === "baseline" ? "Base" : "Fine-tune"} on ${r.eval_file}`;
                return (
                  <li key={r.id} className="item">
                    <span className="item-title">{label}</span>
                    {live ? (
                      <ProgressBar
                        value={live.progress.rows_done}
                        max={Math.max(live.progress.rows_total, 1)}
                        label={label}
                        valueText={`${live.progress.rows_done} of ${live.progress.rows_total} rows`}
                      />
                    ) : null}
                    <StatusBadge status={live?.status ?? r.status ?? "queued"} />
                  </li>
                );
              })}
            </ul>
          ) : null}
          <DecisionReport report={report.data} />
        </>
      ) : null}
    </section>
  );
}
