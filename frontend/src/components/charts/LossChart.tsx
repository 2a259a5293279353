// Train and validation loss by step (recharts), from the job's metrics events.
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { MetricsData } from "../../api";
import { formatLoss } from "../../lib/format";
import { ChartFrame } from "./ChartFrame";

export interface LossPoint {
  step: number;
  train_loss: number | null;
  valid_loss: number | null;
}

/** One point per step (the latest report of a step wins), sorted by step. */
export function lossPoints(metrics: readonly Partial<MetricsData>[]): LossPoint[] {
  const byStep = new Map<number, LossPoint>();
  for (const m of metrics) {
    if (typeof m.step !== "number" || typeof m.train_loss !== "number") continue;
    byStep.set(m.step, {
      step: m.step,
      train_loss: m.train_loss,
      valid_loss: typeof m.valid_loss === "number" ? m.valid_loss : null,
    });
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

export function LossChart({ points }: { points: LossPoint[] }) {
  const hasValid = points.some((p) => p.valid_loss !== null);
  return (
    <ChartFrame
      title="Loss by step"
      rows={points}
      empty="The loss curve appears once training reports its first step."
      columns={[
        { label: "Step", value: (p) => p.step },
        { label: "Train loss", value: (p) => (p.train_loss === null ? "—" : formatLoss(p.train_loss)) },
        { label: "Validation loss", value: (p) => (p.valid_loss === null ? "—" : formatLoss(p.valid_loss)) },
      ]}
    >
      <ResponsiveContainer width="100%" height={260}>
        <LineChart accessibilityLayer={false} data={points} margin={{ top: 8, right: 16, bottom: 8, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="step" type="number" domain={["dataMin", "dataMax"]} allowDecimals={false} />
          <YAxis width={48} domain={["auto", "auto"]} />
          <Tooltip />
          <Legend />
          <Line
            type="linear"
            dataKey="train_loss"
            name="Train loss"
            stroke="#1d4ed8"
            strokeWidth={2}
            dot={false}
            isAnimationActive={false}
          />
          {hasValid ? (
            <Line
              type="linear"
              dataKey="valid_loss"
              name="Validation loss"
              stroke="#b45309"
              strokeWidth={2}
              strokeDasharray="6 3"
              connectNulls
              isAnimationActive={false}
            />
          ) : null}
        </LineChart>
      </ResponsiveContainer>
    </ChartFrame>
  );
}
