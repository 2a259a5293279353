// A labelled bar chart (recharts) with its data table.
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { formatNumber } from "../../lib/format";
import { ChartFrame } from "./ChartFrame";

export interface BarDatum {
  label: string;
  value: number;
}

export function BarsChart({
  title,
  data,
  valueLabel,
  categoryLabel,
  color = "#1d4ed8",
  empty,
  digits = 0,
}: {
  title: string;
  data: BarDatum[];
  valueLabel: string;
  categoryLabel: string;
  color?: string;
  empty?: string;
  digits?: number;
}) {
  return (
    <ChartFrame
      title={title}
      rows={data}
      empty={empty}
      columns={[
        { label: categoryLabel, value: (d) => d.label },
        { label: valueLabel, value: (d) => formatNumber(d.value, digits) },
      ]}
    >
      <ResponsiveContainer width="100%" height={220}>
        <BarChart accessibilityLayer={false} data={data} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="label" interval="preserveStartEnd" />
          <YAxis width={48} allowDecimals={digits > 0} />
          <Tooltip />
          <Bar dataKey="value" name={valueLabel} fill={color} isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </ChartFrame>
  );
}
