// A fine-tune's decision report: per-metric base vs fine-tune with bootstrap intervals, the
// regression suite and safety probes side by side, cost per request, and the verdict.
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { DecisionReportObject } from "../api";
import { formatNumber } from "../lib/format";
import { ChartFrame } from "./charts/ChartFrame";
import { StatusBadge } from "./StatusBadge";
import { Empty } from "./States";

export interface MetricDelta {
  baseline: number;
  fine_tune: number;
  delta: number;
  ci95: [number, number];
  rows: number;
}

interface CostSide {
  requests?: number;
  tokens_per_request?: number | null;
  prompt_tokens_per_request?: number | null;
  completion_tokens_per_request?: number | null;
  latency_ms_p50?: number | null;
  latency_ms_p95?: number | null;
}

export interface ReportBody {
  verdict?: { decision: string; message: string };
  primary_metric?: string | null;
  groups?: Partial<Record<"task" | "regression" | "safety", Record<string, MetricDelta>>>;
  cost?: { baseline?: CostSide; fine_tune?: CostSide; token_cost_ratio?: number | null };
}

const VERDICTS: Record<string, string> = {
  ship: "Ship it",
  do_not_ship: "Do not ship",
  keep_prompting: "Keep prompting",
  product_decision: "A product decision",
};

export function pts(value: number): string {
  const v = value * 100;
  const sign = v > 0.05 ? "+" : v < -0.05 ? "−" : "±";
  return `${sign}${Math.abs(v).toFixed(1)} pts`;
}

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

function MetricTable({ title, metrics, primary }: { title: string; metrics: Record<string, MetricDelta>; primary?: string | null }) {
  const rows = Object.entries(metrics).map(([metric, d]) => ({ metric, ...d }));
  return (
    <ChartFrame
      title={title}
      rows={rows}
      empty="No rows in this group."
      columns={[
        { label: "Metric", value: (r) => (r.metric === primary ? `${r.metric} (primary)` : r.metric) },
        { label: "Base", value: (r) => pct(r.baseline) },
        { label: "Fine-tune", value: (r) => pct(r.fine_tune) },
        { label: "Change", value: (r) => pts(r.delta) },
        { label: "95% interval", value: (r) => `${pts(r.ci95[0])} to ${pts(r.ci95[1])}` },
        { label: "Rows", value: (r) => formatNumber(r.rows) },
      ]}
    >
      <ResponsiveContainer width="100%" height={220}>
        <BarChart accessibilityLayer={false} data={rows} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="metric" />
          <YAxis width={40} domain={[0, 1]} />
          <Tooltip />
          <Legend />
          <Bar dataKey="baseline" name="Base" fill="#64748b" isAnimationActive={false} />
          <Bar dataKey="fine_tune" name="Fine-tune" fill="#1d4ed8" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </ChartFrame>
  );
}

function num(v: number | null | undefined, digits = 0): string {
  return v === null || v === undefined ? "—" : formatNumber(v, digits);
}

function CostTable({ cost }: { cost: NonNullable<ReportBody["cost"]> }) {
  const b = cost.baseline ?? {};
  const f = cost.fine_tune ?? {};
  const rows: [string, string, string][] = [
    ["Requests", num(b.requests), num(f.requests)],
    ["Tokens per request", num(b.tokens_per_request, 1), num(f.tokens_per_request, 1)],
    ["Prompt tokens per request", num(b.prompt_tokens_per_request, 1), num(f.prompt_tokens_per_request, 1)],
    ["Completion tokens per request", num(b.completion_tokens_per_request, 1), num(f.completion_tokens_per_request, 1)],
    ["Latency p50 (ms)", num(b.latency_ms_p50), num(f.latency_ms_p50)],
    ["Latency p95 (ms)", num(b.latency_ms_p95), num(f.latency_ms_p95)],
  ];
  return (
    <div className="table-scroll" tabIndex={0} role="region" aria-label="Cost per request">
      <table className="table">
        <caption>
          Cost per request
          {cost.token_cost_ratio ? ` — the fine-tune uses ${cost.token_cost_ratio.toFixed(2)}× the base's tokens` : ""}
        </caption>
        <thead>
          <tr>
            <th scope="col">Measure</th>
            <th scope="col">Base</th>
            <th scope="col">Fine-tune</th>
          </tr>
        </thead>
        <tbody>
          {rows.map(([k, bv, fv]) => (
            <tr key={k}>
              <th scope="row">{k}</th>
              <td className="num">{bv}</td>
              <td className="num">{fv}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function DecisionReport({ report }: { report: DecisionReportObject | null | undefined }) {
  if (!report) return null;
  if (report.status !== "succeeded" || !report.report) {
    return (
      <div className="decision-report">
        <p>
          Decision report <StatusBadge status={report.status} />
        </p>
        {report.status === "failed" ? (
          <p className="state state-error" role="alert">
            {String(report.error?.message ?? "The decision report failed.")}
          </p>
        ) : null}
      </div>
    );
  }
  const body = report.report as ReportBody;
  const groups = body.groups ?? {};
  return (
    <div className="decision-report">
      {body.verdict ? (
        <div className={`verdict verdict-${body.verdict.decision}`} data-testid="verdict">
          <p className="state-title">{VERDICTS[body.verdict.decision] ?? body.verdict.decision}</p>
          <p>{body.verdict.message}</p>
        </div>
      ) : null}
      {groups.task && Object.keys(groups.task).length > 0 ? (
        <MetricTable title="Task metrics" metrics={groups.task} primary={body.primary_metric} />
      ) : (
        <Empty title="No task rows were scored." />
      )}
      <div className="split">
        <MetricTable title="Regression suite" metrics={groups.regression ?? {}} />
        <MetricTable title="Safety probes" metrics={groups.safety ?? {}} />
      </div>
      {body.cost ? <CostTable cost={body.cost} /> : null}
    </div>
  );
}
