// The dataset quality report: format, errors by line, token lengths, duplicates and
// contamination, label balance, personal data, advice and sample rows to review.
import type { DatasetReportBody, FileReport } from "../api";
import { formatNumber } from "../lib/format";
import { BarsChart } from "./charts/BarsChart";
import { Empty, Loading } from "./States";

const MAX_ERRORS_SHOWN = 500;

/** Lets long snake_case codes wrap after underscores on narrow screens. */
function BreakableCode({ text }: { text: string }) {
  const parts = String(text ?? "").split("_");
  return (
    <>
      {parts.map((part, i) => (
        <span key={i}>
          {part}
          {i < parts.length - 1 ? (
            <>
              _<wbr />
            </>
          ) : null}
        </span>
      ))}
    </>
  );
}

function Fact({ label, value }: { label: string; value: string }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

function lines(list: readonly number[], total: number): string {
  if (list.length === 0) return "";
  const shown = list.slice(0, 20).join(", ");
  return total > 20 ? `lines ${shown}, …` : `line${list.length > 1 ? "s" : ""} ${shown}`;
}

export function DatasetReport({ report }: { report: FileReport }) {
  if (report.status === "uploaded") {
    return <Loading label="Checking the file… the report appears here when it is done." />;
  }
  const body = report.report;
  if (!body) return <Empty title="No report for this file." />;
  return (
    <div className="report">
      <Overview body={body} />
      <Advice body={body} />
      <Errors body={body} />
      <Tokens body={body} />
      <Duplicates body={body} />
      <Balance body={body} />
      <PersonalData body={body} />
      <Samples body={body} />
    </div>
  );
}

function Overview({ body }: { body: DatasetReportBody }) {
  const errors = body.error_count ?? body.errors?.length ?? 0;
  return (
    <dl className="facts">
      <Fact label="Format" value={body.format ?? "Unknown"} />
      <Fact label="Rows" value={formatNumber(body.rows ?? null)} />
      <Fact label="Valid rows" value={formatNumber(body.valid_rows ?? null)} />
      <Fact label="Errors" value={formatNumber(errors)} />
      {body.estimate ? (
        <>
          <Fact label={`Tokens (${body.estimate.n_epochs} epochs)`} value={formatNumber(body.estimate.total_training_tokens)} />
          <Fact label="Estimated training" value={body.estimate.expected_duration ?? `${body.estimate.expected_duration_seconds} s`} />
        </>
      ) : null}
    </dl>
  );
}

function Advice({ body }: { body: DatasetReportBody }) {
  if (!body.advice?.length) return null;
  return (
    <section aria-labelledby="advice-heading">
      <h3 id="advice-heading">Advice</h3>
      <ul className="advice-list">
        {body.advice.map((a) => (
          <li key={a.code} className="state state-info">
            {a.message}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Errors({ body }: { body: DatasetReportBody }) {
  const errors = body.errors ?? [];
  const count = body.error_count ?? errors.length;
  if (count === 0) return <p className="state state-success">Every row is valid.</p>;
  return (
    <section aria-labelledby="errors-heading">
      <h3 id="errors-heading">Errors by line</h3>
      {body.errors_by_code ? (
        <p>
          {Object.entries(body.errors_by_code)
            .map(([code, n]) => `${code}: ${formatNumber(n)}`)
            .join(" · ")}
        </p>
      ) : null}
      {errors.length === 0 ? (
        <p>{formatNumber(count)} problems were found, but no details were reported.</p>
      ) : (
        <div className="table-scroll" tabIndex={0} role="region" aria-label="Error list">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Line</th>
                <th scope="col">Code</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {errors.slice(0, MAX_ERRORS_SHOWN).map((e, i) => (
                <tr key={`${e.line}-${e.code}-${i}`}>
                  <td className="num">{e.line ?? "—"}</td>
                  <td className="mono">
                    <BreakableCode text={e.code} />
                  </td>
                  <td>{e.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {count > Math.min(errors.length, MAX_ERRORS_SHOWN) ? (
        <p className="hint">
          Showing {formatNumber(Math.min(errors.length, MAX_ERRORS_SHOWN))} of {formatNumber(count)} errors.
        </p>
      ) : null}
    </section>
  );
}

function Tokens({ body }: { body: DatasetReportBody }) {
  const t = body.tokens;
  if (!t) return null;
  const bins = (t.histogram ?? []).map((b) => ({ label: `${b.from}–${b.to}`, value: b.rows }));
  return (
    <section aria-labelledby="tokens-heading">
      <h3 id="tokens-heading">Token lengths</h3>
      <dl className="facts">
        <Fact label="Median" value={formatNumber(t.p50 ?? null)} />
        <Fact label="95th percentile" value={formatNumber(t.p95 ?? null)} />
        <Fact label="Longest" value={formatNumber(t.max ?? null)} />
        <Fact label="Total tokens" value={formatNumber(t.total ?? null)} />
        <Fact label="Max length" value={formatNumber(t.max_seq_length ?? null)} />
        <Fact label="Rows cut at max length" value={formatNumber(t.truncated_rows ?? 0)} />
      </dl>
      <BarsChart
        title="Rows by token length"
        data={bins}
        categoryLabel="Tokens"
        valueLabel="Rows"
        empty="No rows were counted."
      />
      {t.truncated_lines?.length ? (
        <p className="hint">Cut at the max length: {lines(t.truncated_lines, t.truncated_rows ?? 0)}.</p>
      ) : null}
    </section>
  );
}

function Duplicates({ body }: { body: DatasetReportBody }) {
  const d = body.duplicates;
  const c = body.contamination;
  if (!d && !c) return null;
  return (
    <section aria-labelledby="dups-heading">
      <h3 id="dups-heading">Duplicates and contamination</h3>
      <dl className="facts">
        <Fact label="Exact duplicate rows" value={formatNumber(d?.exact?.rows ?? 0)} />
        <Fact label="Near-duplicate rows" value={formatNumber(d?.near?.rows ?? 0)} />
        <Fact
          label="Rows also in the validation file"
          value={c ? formatNumber(c.contaminated_rows ?? 0) : "Not checked"}
        />
      </dl>
      {d?.near?.method ? <p className="hint">Near duplicates: {d.near.method}.</p> : null}
    </section>
  );
}

function Balance({ body }: { body: DatasetReportBody }) {
  const b = body.balance;
  if (!b) return null;
  if (!b.classification_like || !b.labels) {
    return (
      <section aria-labelledby="balance-heading">
        <h3 id="balance-heading">Label balance</h3>
        <p>The answers do not look like labels from a fixed set, so there is no balance to check.</p>
      </section>
    );
  }
  const data = Object.entries(b.labels).map(([label, value]) => ({ label, value }));
  return (
    <section aria-labelledby="balance-heading">
      <h3 id="balance-heading">Label balance</h3>
      {b.warning ? <p className="state state-error">{b.warning}</p> : null}
      <BarsChart title="Rows by label" data={data} categoryLabel="Label" valueLabel="Rows" color="#047857" />
    </section>
  );
}

function PersonalData({ body }: { body: DatasetReportBody }) {
  const p = body.pii;
  if (!p) return null;
  return (
    <section aria-labelledby="pii-heading">
      <h3 id="pii-heading">Personal data</h3>
      {p.rows === 0 ? (
        <p className="state state-success">No e-mail addresses, phone or card numbers found.</p>
      ) : (
        <ul className="pii-list">
          {Object.entries(p.by_kind).map(([kind, found]) => (
            <li key={kind} className="state state-error">
              <strong>{kind.replace(/_/g, " ")}</strong>: {formatNumber(found.rows)} row
              {found.rows === 1 ? "" : "s"} ({lines(found.lines, found.rows)})
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Samples({ body }: { body: DatasetReportBody }) {
  const rows = body.sample ?? [];
  if (rows.length === 0) return null;
  return (
    <section aria-labelledby="sample-heading">
      <h3 id="sample-heading">Sample rows to review</h3>
      <ol className="sample-list">
        {rows.slice(0, 10).map((s) => (
          <li key={s.line}>
            <p className="hint">Line {s.line}</p>
            <SampleRow row={s.row} />
          </li>
        ))}
      </ol>
    </section>
  );
}

function SampleRow({ row }: { row: unknown }) {
  const messages = (row as { messages?: { role: string; content: unknown }[] } | null)?.messages;
  if (Array.isArray(messages)) {
    return (
      <dl className="sample-messages">
        {messages.map((m, i) => (
          <div key={i}>
            <dt>{m.role}</dt>
            <dd>{typeof m.content === "string" ? m.content : JSON.stringify(m.content)}</dd>
          </div>
        ))}
      </dl>
    );
  }
  return <pre className="mono sample-raw">{JSON.stringify(row, null, 2)}</pre>;
}
