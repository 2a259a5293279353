// The decision report of an adapter version (eval runs, gates), shown on the Models page when
// the API provides one. Kept apart so the evals work can fill it in without touching the page;
// until then the page passes nothing and it renders nothing.
export type DecisionReportData = Record<string, unknown>;

export function DecisionReport({ report }: { report: DecisionReportData | null | undefined }) {
  if (!report) return null;
  return (
    <section className="decision-report" aria-labelledby="decision-report-heading">
      <h3 id="decision-report-heading">Decision report</h3>
      <dl className="facts facts-wide">
        {Object.entries(report).map(([k, v]) => (
          <div key={k}>
            <dt>{k.replace(/_/g, " ")}</dt>
            <dd className="break">{typeof v === "object" ? JSON.stringify(v) : String(v)}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}
