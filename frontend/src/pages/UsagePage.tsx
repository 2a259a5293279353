import { useQuery } from "@tanstack/react-query";
import { useId, useMemo, useState } from "react";
import { getDrift, getUsage, listAdapters, type UsageDay } from "../api";
import { BarsChart } from "../components/charts/BarsChart";
import { SeriesChart } from "../components/charts/SeriesChart";
import { Empty, ErrorMessage, Loading } from "../components/States";
import { usePageTitle } from "../hooks/usePageTitle";
import { formatNumber } from "../lib/format";

type Metric = "requests" | "total_tokens" | "latency_ms_avg";

/** One row per day with a column per model, for a day-by-model chart. */
export function pivot(days: readonly UsageDay[], metric: Metric): { rows: Record<string, string | number | null>[]; models: string[] } {
  const models = [...new Set(days.map((d) => d.model))].sort();
  const byDate = new Map<string, Record<string, string | number | null>>();
  for (const d of days) {
    const row = byDate.get(d.date) ?? { date: d.date };
    row[d.model] = d[metric];
    byDate.set(d.date, row);
  }
  return { rows: [...byDate.values()].sort((a, b) => String(a.date).localeCompare(String(b.date))), models };
}

export function UsagePage() {
  usePageTitle("Usage and drift");
  const usage = useQuery({ queryKey: ["usage"], queryFn: ({ signal }) => getUsage({}, signal) });
  return (
    <div className="page">
      <h1 tabIndex={-1}>Usage and drift</h1>
      <p className="lede">Requests, tokens and latency per model version over the last 30 days, and how people rate the answers.</p>
      <section className="card" aria-labelledby="usage-heading">
        <h2 id="usage-heading">Usage</h2>
        {usage.isPending ? (
          <Loading label="Loading usage…" />
        ) : usage.isError ? (
          <ErrorMessage error={usage.error} title="Could not load usage." onRetry={() => void usage.refetch()} />
        ) : usage.data.data.length === 0 ? (
          <Empty title="No requests in the last 30 days." />
        ) : (
          <UsageCharts days={usage.data.data} totals={usage.data.totals} />
        )}
      </section>
      <section className="card" aria-labelledby="drift-heading">
        <h2 id="drift-heading">Thumbs-down trend</h2>
        <Drift />
      </section>
    </div>
  );
}

function UsageCharts({ days, totals }: { days: UsageDay[]; totals: { requests?: number; total_tokens?: number } }) {
  const charts = useMemo(
    () => ({
      requests: pivot(days, "requests"),
      tokens: pivot(days, "total_tokens"),
      latency: pivot(days, "latency_ms_avg"),
    }),
    [days],
  );
  const series = (models: string[]) => models.map((m) => ({ key: m, label: m }));
  return (
    <>
      <dl className="facts">
        <div>
          <dt>Requests</dt>
          <dd>{formatNumber(totals.requests ?? 0)}</dd>
        </div>
        <div>
          <dt>Tokens</dt>
          <dd>{formatNumber(totals.total_tokens ?? 0)}</dd>
        </div>
      </dl>
      <SeriesChart title="Requests per day" rows={charts.requests.rows} x="date" xLabel="Day" series={series(charts.requests.models)} format={(v) => formatNumber(v)} />
      <SeriesChart title="Tokens per day" rows={charts.tokens.rows} x="date" xLabel="Day" series={series(charts.tokens.models)} format={(v) => formatNumber(v)} />
      <SeriesChart
        title="Average latency per day (ms)"
        rows={charts.latency.rows}
        x="date"
        xLabel="Day"
        series={series(charts.latency.models)}
        format={(v) => formatNumber(v, 0)}
      />
    </>
  );
}

function Drift() {
  const id = useId();
  const adapters = useQuery({ queryKey: ["adapters"], queryFn: ({ signal }) => listAdapters(signal) });
  const [chosen, setChosen] = useState("");
  const list = adapters.data?.data ?? [];
  const adapterId = list.some((a) => a.id === chosen) ? chosen : (list[0]?.id ?? "");
  const drift = useQuery({
    queryKey: ["drift", adapterId],
    queryFn: ({ signal }) => getDrift(adapterId, signal),
    enabled: adapterId !== "",
  });
  if (adapters.isPending) return <Loading label="Loading adapters…" />;
  if (adapters.isError) return <ErrorMessage error={adapters.error} title="Could not load adapters." onRetry={() => void adapters.refetch()} />;
  if (list.length === 0) return <Empty title="No adapters yet, so no ratings to follow." />;
  const report = drift.data;
  const data = report
    ? [
        { label: "First week (baseline)", value: (report.baseline.down_rate ?? 0) * 100 },
        ...report.windows.map((w) => ({ label: `Last ${w.window}`, value: (w.down_rate ?? 0) * 100 })),
      ]
    : [];
  return (
    <>
      <div className="field">
        <label htmlFor={`${id}-adapter`}>Adapter version</label>
        <select id={`${id}-adapter`} value={adapterId} onChange={(e) => setChosen(e.target.value)}>
          {list.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name}
            </option>
          ))}
        </select>
      </div>
      {drift.isPending ? (
        <Loading label="Loading ratings…" />
      ) : drift.isError ? (
        <ErrorMessage error={drift.error} title="Could not load the trend." onRetry={() => void drift.refetch()} />
      ) : report ? (
        <>
          <p className={report.status === "alert" ? "state state-error" : "state state-info"}>
            {report.status === "alert"
              ? `Alert: thumbs-down is more than ${Math.round(report.margin * 100)} points above the first week.`
              : report.status === "ok"
                ? "Ratings are in line with the first week."
                : `Not enough ratings yet to judge (at least ${report.min_volume} needed in each window).`}
          </p>
          <BarsChart
            title="Thumbs-down rate (%)"
            data={data}
            categoryLabel="Window"
            valueLabel="Thumbs down (%)"
            color="#be123c"
            digits={1}
          />
          <p className="hint">
            Ratings: {formatNumber(report.baseline.ratings)} in the first week
            {report.windows.map((w) => `, ${formatNumber(w.ratings)} in the last ${w.window}`).join("")}.
          </p>
        </>
      ) : null}
    </>
  );
}
