import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import {
  cancelEvalRun,
  createEvalRun,
  getFileContent,
  isFineTuned,
  listAdapters,
  listAliases,
  listEvalRows,
  listEvalRuns,
  listFiles,
  listModels,
  type EvalRun,
} from "../api";
import { ProgressBar } from "../components/ProgressBar";
import { StatusBadge } from "../components/StatusBadge";
import { Empty, ErrorMessage, Loading } from "../components/States";
import { usePageTitle } from "../hooks/usePageTitle";
import { formatNumber, formatTimestamp } from "../lib/format";
import { Link } from "../router";

const ACTIVE = ["queued", "running"];

/** The run's overall metric means, as "exact_match 0.80 · json_valid 1.00". */
export function metricSummary(run: EvalRun): string {
  const overall = (run.metrics?.overall ?? {}) as Record<string, { mean?: number | null }>;
  const parts = Object.entries(overall)
    .filter(([, v]) => typeof v?.mean === "number")
    .map(([k, v]) => `${k} ${(v.mean as number).toFixed(2)}`);
  return parts.length ? parts.join(" · ") : "—";
}

export interface EvalLine {
  input: string;
  expected: string;
}

/**
 * The eval file's rows by line number (1-based, as the rows API numbers them): the rows API
 * returns outputs and scores only, so the prompt and the expected answer come from the file.
 */
export function evalLines(text: string): Map<number, EvalLine> {
  const out = new Map<number, EvalLine>();
  text.split("\n").forEach((raw, i) => {
    if (!raw.trim()) return;
    try {
      const row = JSON.parse(raw) as { messages?: { role?: string; content?: unknown }[]; expected?: unknown };
      const last = [...(row.messages ?? [])].reverse().find((m) => m.role === "user");
      const expected = row.expected;
      out.set(i + 1, {
        input: typeof last?.content === "string" ? last.content : JSON.stringify(last?.content ?? ""),
        expected: expected === null || expected === undefined ? "—" : typeof expected === "string" ? expected : JSON.stringify(expected),
      });
    } catch {
      // Not JSON (a .jsonl.gz file is stored compressed): its rows show no input.
    }
  });
  return out;
}

function candidateLabel(run: EvalRun): string {
  const c = run.candidate;
  const who = c.alias ? `${c.alias} → ${c.adapter_id ?? c.base_model}` : c.model;
  return c.system_prompt ? `${who} (with a system prompt)` : who;
}

export function EvaluationsPage({ runId }: { runId: string | null }) {
  usePageTitle("Evaluations");
  const runs = useQuery({
    queryKey: ["eval-runs"],
    queryFn: ({ signal }) => listEvalRuns(signal),
    refetchInterval: (q) => (q.state.data?.data.some((r) => ACTIVE.includes(r.status)) ? 3000 : false),
  });
  const list = runs.data?.data ?? [];
  const selected = list.find((r) => r.id === runId) ?? null;
  return (
    <div className="page">
      <h1 tabIndex={-1}>Evaluations</h1>
      <p className="lede">Measure a base model with a system prompt, an adapter or an alias on an eval file, as clients are served.</p>
      <StartRun />
      <section className="card" aria-labelledby="runs-heading">
        <h2 id="runs-heading">Eval runs</h2>
        {runs.isPending ? (
          <Loading label="Loading eval runs…" />
        ) : runs.isError ? (
          <ErrorMessage error={runs.error} title="Could not load eval runs." onRetry={() => void runs.refetch()} />
        ) : list.length === 0 ? (
          <Empty title="No eval runs yet.">
            <p>Start one above on an eval file (Datasets page, purpose “evals”).</p>
          </Empty>
        ) : (
          <div className="table-scroll" tabIndex={0} role="region" aria-label="Eval runs">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Run</th>
                  <th scope="col">Status</th>
                  <th scope="col">Candidate</th>
                  <th scope="col">Metrics</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {list.map((r) => (
                  <tr key={r.id}>
                    <td className="mono">
                      <Link to={`/evaluations/${encodeURIComponent(r.id)}`} aria-current={r.id === runId ? "true" : undefined}>
                        {r.id}
                      </Link>
                    </td>
                    <td>
                      <StatusBadge status={r.status} />
                    </td>
                    <td className="mono break">{candidateLabel(r)}</td>
                    <td className="break">{metricSummary(r)}</td>
                    <td>{formatTimestamp(r.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {runId ? (
        selected ? (
          <RunDetail run={selected} />
        ) : runs.isSuccess ? (
          <section className="card">
            <Empty title={`No eval run ${runId}.`} />
          </section>
        ) : null
      ) : null}
    </div>
  );
}

function RunDetail({ run }: { run: EvalRun }) {
  const client = useQueryClient();
  const active = ACTIVE.includes(run.status);
  const rows = useQuery({
    queryKey: ["eval-rows", run.id],
    queryFn: ({ signal }) => listEvalRows(run.id, signal),
    refetchInterval: active ? 3000 : false,
  });
  const file = useQuery({
    queryKey: ["eval-file-lines", run.eval_file],
    queryFn: async () => evalLines(await (await getFileContent(run.eval_file)).text()),
    staleTime: Infinity,
  });
  const cancel = useMutation({
    mutationFn: () => cancelEvalRun(run.id),
    onSuccess: () => void client.invalidateQueries({ queryKey: ["eval-runs"] }),
  });
  const { rows_done, rows_total } = run.progress;
  return (
    <section className="card" aria-labelledby="run-heading">
      <h2 id="run-heading" className="break">
        {run.id} <StatusBadge status={run.status} />
      </h2>
      <p>
        Candidate <span className="mono break">{candidateLabel(run)}</span> on{" "}
        <Link className="mono" to={`/datasets/${encodeURIComponent(run.eval_file)}`}>
          {run.eval_file}
        </Link>
      </p>
      {active ? (
        <>
          <ProgressBar value={rows_done} max={Math.max(rows_total, 1)} label={`${rows_done} of ${rows_total} rows`} />
          <div className="form-actions">
            <button type="button" className="button button-danger" disabled={cancel.isPending} onClick={() => cancel.mutate()}>
              Cancel run
            </button>
          </div>
        </>
      ) : null}
      {cancel.isError ? <ErrorMessage error={cancel.error} title="Could not cancel." /> : null}
      {run.error ? (
        <p className="state state-error" role="alert">
          {String(run.error.message ?? "The run failed.")}
        </p>
      ) : null}
      <h3>Rows</h3>
      {rows.isPending ? (
        <Loading label="Loading rows…" />
      ) : rows.isError ? (
        <ErrorMessage error={rows.error} title="Could not load rows." onRetry={() => void rows.refetch()} />
      ) : rows.data.data.length === 0 ? (
        <Empty title="No rows scored yet." />
      ) : (
        <div className="table-scroll" tabIndex={0} role="region" aria-label="Scored rows">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Line</th>
                <th scope="col">Tags</th>
                <th scope="col">Input</th>
                <th scope="col">Output</th>
                <th scope="col">Expected</th>
                <th scope="col">Scores</th>
                <th scope="col">Latency (ms)</th>
                <th scope="col">Tokens</th>
              </tr>
            </thead>
            <tbody>
              {rows.data.data.map((r) => (
                <tr key={r.line}>
                  <td className="num">{r.line}</td>
                  <td>{r.tags.join(", ")}</td>
                  <td className="break">{file.data?.get(r.line)?.input ?? "—"}</td>
                  <td className="break">{r.error ? <span className="state-error">{r.error}</span> : (r.output ?? "—")}</td>
                  <td className="break">{file.data?.get(r.line)?.expected ?? "—"}</td>
                  <td className="break">
                    {Object.entries(r.scores)
                      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
                      .join(" · ") || "—"}
                  </td>
                  <td className="num">{formatNumber(r.latency_ms)}</td>
                  <td className="num">
                    {r.usage.prompt_tokens} + {r.usage.completion_tokens}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

type Kind = "base" | "adapter" | "alias";

function StartRun() {
  const id = useId();
  const client = useQueryClient();
  const [file, setFile] = useState("");
  const [kind, setKind] = useState<Kind>("base");
  const [model, setModel] = useState("");
  const [systemPrompt, setSystemPrompt] = useState("");
  const files = useQuery({ queryKey: ["files"], queryFn: ({ signal }) => listFiles(signal) });
  const models = useQuery({ queryKey: ["models"], queryFn: ({ signal }) => listModels(signal) });
  const adapters = useQuery({ queryKey: ["adapters"], queryFn: ({ signal }) => listAdapters(signal) });
  const aliases = useQuery({ queryKey: ["aliases"], queryFn: ({ signal }) => listAliases(signal) });
  const start = useMutation({
    mutationFn: () =>
      createEvalRun({ eval_file: file, candidate: { model, system_prompt: systemPrompt.trim() || null } }),
    onSuccess: () => void client.invalidateQueries({ queryKey: ["eval-runs"] }),
  });
  const evalFiles = (files.data?.data ?? []).filter((f) => f.purpose === "evals" && f.status === "processed");
  const choices: { value: string; label: string }[] =
    kind === "base"
      ? (models.data?.data ?? []).filter((m) => !isFineTuned(m)).map((m) => ({ value: m.id, label: m.id }))
      : kind === "adapter"
        ? (adapters.data?.data ?? []).map((a) => ({ value: a.id, label: a.name }))
        : (aliases.data?.data ?? []).map((a) => ({ value: a.name, label: `${a.name} → ${a.target.model}` }));
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (file && model) start.mutate();
  };
  return (
    <section className="card" aria-labelledby={`${id}-heading`}>
      <h2 id={`${id}-heading`}>Start an eval run</h2>
      {files.isPending ? (
        <Loading label="Loading eval files…" />
      ) : files.isError ? (
        <ErrorMessage error={files.error} title="Could not load eval files." onRetry={() => void files.refetch()} />
      ) : evalFiles.length === 0 ? (
        <Empty title="No eval files yet.">
          <p>
            <Link to="/datasets">Upload one</Link> with the purpose “evals”.
          </p>
        </Empty>
      ) : (
        <form className="form" onSubmit={onSubmit}>
          <div className="field">
            <label htmlFor={`${id}-file`}>Eval file</label>
            <select id={`${id}-file`} value={file} onChange={(e) => setFile(e.target.value)} required>
              <option value="">Choose…</option>
              {evalFiles.map((f) => (
                <option key={f.id} value={f.id}>
                  {f.filename} ({f.id})
                </option>
              ))}
            </select>
          </div>
          <fieldset className="field">
            <legend>Candidate</legend>
            {(["base", "adapter", "alias"] as const).map((k) => (
              <label key={k} className="checkbox">
                <input
                  type="radio"
                  name={`${id}-kind`}
                  value={k}
                  checked={kind === k}
                  onChange={() => {
                    setKind(k);
                    setModel("");
                  }}
                />{" "}
                {k === "base" ? "Base model" : k === "adapter" ? "Adapter" : "Alias"}
              </label>
            ))}
          </fieldset>
          <div className="field">
            <label htmlFor={`${id}-model`}>Model</label>
            <select id={`${id}-model`} value={model} onChange={(e) => setModel(e.target.value)} required>
              <option value="">Choose…</option>
              {choices.map((c) => (
                <option key={c.value} value={c.value}>
                  {c.label}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={`${id}-system`}>System prompt (optional)</label>
            <textarea id={`${id}-system`} rows={3} value={systemPrompt} onChange={(e) => setSystemPrompt(e.target.value)} />
          </div>
          <div className="form-actions">
            <button type="submit" className="button button-primary" disabled={start.isPending || !file || !model}>
              {start.isPending ? "Starting…" : "Start the run"}
            </button>
          </div>
          <div aria-live="polite">
            {start.isSuccess ? (
              <p className="state state-success">
                Started <Link to={`/evaluations/${encodeURIComponent(start.data.id)}`}>{start.data.id}</Link>.
              </p>
            ) : null}
          </div>
          {start.isError ? <ErrorMessage error={start.error} title="Could not start the run." /> : null}
        </form>
      )}
    </section>
  );
}
