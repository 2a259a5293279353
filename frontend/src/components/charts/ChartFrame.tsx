// A chart with its data as a table: the table is what screen readers (and tests) read, and
// what people can open when the picture is not enough.
import type { ReactNode } from "react";

export interface Column<Row> {
  label: string;
  value: (row: Row) => ReactNode;
}

export function ChartFrame<Row>({
  title,
  rows,
  columns,
  children,
  empty,
}: {
  title: string;
  rows: readonly Row[];
  columns: Column<Row>[];
  children: ReactNode;
  empty?: string;
}) {
  if (rows.length === 0) {
    return (
      <figure className="chart">
        <figcaption className="chart-caption">{title}</figcaption>
        <p className="state state-empty">{empty ?? "Nothing to chart yet."}</p>
      </figure>
    );
  }
  return (
    <figure className="chart">
      <figcaption className="chart-caption">{title}</figcaption>
      <div className="chart-canvas" aria-hidden="true">
        {children}
      </div>
      <details className="chart-data">
        <summary>Show the data as a table</summary>
        <div className="table-scroll" tabIndex={0} role="region" aria-label={`${title} data`}>
          <table className="table">
            <thead>
              <tr>
                {columns.map((c) => (
                  <th key={c.label} scope="col">
                    {c.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((row, i) => (
                <tr key={i}>
                  {columns.map((c) => (
                    <td key={c.label}>{c.value(row)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
