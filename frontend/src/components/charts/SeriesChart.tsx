// Several numeric series over a shared x axis (days, windows), as lines.
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { ChartFrame } from "./ChartFrame";

const COLORS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c", "#0e7490"];

export interface Series {
  key: string;
  label: string;
}

export function SeriesChart({
  title,
  rows,
  x,
  xLabel,
  series,
  format,
  empty,
}: {
  title: string;
  rows: Record<string, string | number | null>[];
  x: string;
  xLabel: string;
  series: Series[];
  format: (v: number | null) => string;
  empty?: string;
}) {
  return (
    <ChartFrame
      title={title}
      rows={rows}
      empty={empty}
      columns={[
        { label: xLabel, value: (r) => String(r[x] ?? "") },
        ...series.map((s) => ({
          label: s.label,
          value: (r: Record<string, string | number | null>) => {
            const v = r[s.key];
            return format(typeof v === "number" ? v : null);
          },
        })),
      ]}
    >
      <ResponsiveContainer width="100%" height={240}>
        <LineChart accessibilityLayer={false} data={rows} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey={x} />
          <YAxis width={56} />
          <Tooltip />
          <Legend />
          {series.map((s, i) => (
            <Line
              key={s.key}
              dataKey={s.key}
              name={s.label}
              stroke={COLORS[i % COLORS.length]}
              strokeWidth={2}
              connectNulls
              isAnimationActive={false}
            />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </ChartFrame>
  );
}
