// The training-loss curve, drawn as inline SVG from a job's metrics events.
import { useEffect, useId, useRef, useState, type RefObject } from "react";
import type { JobEvent } from "../api";
import { formatLoss, formatNumber } from "../lib/format";

export interface LossPoint {
  step: number;
  loss: number;
  totalSteps: number | null;
}

/** Metrics events → points sorted by step (one per step; the newest event wins). */
export function lossPoints(events: readonly JobEvent[]): LossPoint[] {
  const byStep = new Map<number, LossPoint & { at: number }>();
  for (const e of events) {
    if (e.type !== "metrics" || !e.data) continue;
    const d = e.data as Record<string, unknown>;
    const step = Number(d.step);
    const loss = Number(d.train_loss);
    if (!Number.isFinite(step) || !Number.isFinite(loss)) continue;
    const total = Number(d.total_steps);
    const prev = byStep.get(step);
    if (prev && prev.at > e.created_at) continue;
    byStep.set(step, {
      step,
      loss,
      totalSteps: Number.isFinite(total) && total > 0 ? total : null,
      at: e.created_at,
    });
  }
  return [...byStep.values()]
    .sort((a, b) => a.step - b.step)
    .map(({ step, loss, totalSteps }) => ({ step, loss, totalSteps }));
}

const DEFAULT_WIDTH = 640;
const PAD = { top: 16, right: 20, bottom: 40, left: 56 };

/** Round tick values (1, 2 or 5 × 10ⁿ apart) covering [min, max]. */
export function niceTicks(min: number, max: number, target = 4): number[] {
  if (!(max > min)) return [min];
  const rough = (max - min) / Math.max(1, target - 1);
  const mag = 10 ** Math.floor(Math.log10(rough));
  // The 1-2-5 step nearest to the rough one.
  const step =
    [1, 2, 5, 10]
      .map((m) => m * mag)
      .reduce((best, s) => (Math.abs(Math.log(s / rough)) < Math.abs(Math.log(best / rough)) ? s : best));
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

/** The chart's width in CSS pixels, so text keeps its size at any screen width. */
function useWidth<T extends Element>(): [RefObject<T | null>, number] {
  const ref = useRef<T>(null);
  const [width, setWidth] = useState(DEFAULT_WIDTH);
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(([entry]) => {
      const w = entry?.contentRect.width;
      if (w) setWidth(Math.round(w));
    });
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

export function LossChart({
  events,
  emptyText = "No loss values yet. The curve appears when training reports its first step.",
}: {
  events: readonly JobEvent[];
  emptyText?: string;
}) {
  const titleId = useId();
  const captionId = useId();
  const [figureRef, measured] = useWidth<HTMLElement>();
  const points = lossPoints(events);

  if (points.length === 0) {
    return <p className="state state-empty chart-empty">{emptyText}</p>;
  }

  const W = Math.max(280, Math.min(measured, 960));
  const H = W < 480 ? 200 : 260;

  const first = points[0] as LossPoint;
  const last = points[points.length - 1] as LossPoint;
  const totalSteps = last.totalSteps;
  const xMin = Math.min(0, first.step);
  const xMax = Math.max(totalSteps ?? 0, last.step, xMin + 1);
  let yMin = Math.min(...points.map((p) => p.loss));
  let yMax = Math.max(...points.map((p) => p.loss));
  const minLoss = yMin;
  if (yMin === yMax) {
    yMin -= 0.5;
    yMax += 0.5;
  } else {
    const pad = (yMax - yMin) * 0.08;
    yMin = Math.max(0, yMin - pad);
    yMax += pad;
  }

  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (step: number) => PAD.left + ((step - xMin) / (xMax - xMin)) * plotW;
  const y = (loss: number) => PAD.top + (1 - (loss - yMin) / (yMax - yMin)) * plotH;

  const d = points
    .map((p, i) => `${i === 0 ? "M" : "L"}${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`)
    .join(" ");
  const yTicks = niceTicks(yMin, yMax, W < 480 ? 3 : 4);
  const xTicks = niceTicks(xMin, xMax, W < 480 ? 3 : 5).filter((v) => Number.isInteger(v));

  const summary =
    points.length === 1
      ? `Training loss ${formatLoss(first.loss)} at step ${first.step}.`
      : `Training loss from ${formatLoss(first.loss)} at step ${first.step} to ` +
        `${formatLoss(last.loss)} at step ${last.step}` +
        (totalSteps ? ` of ${totalSteps}` : "") +
        `; lowest ${formatLoss(minLoss)}.`;

  return (
    <figure className="chart" ref={figureRef}>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-labelledby={titleId}
        aria-describedby={captionId}
        className="chart-svg"
        width={W}
        height={H}
      >
        <title id={titleId}>Training loss by step</title>
        <g className="chart-grid" aria-hidden="true">
          {yTicks.map((t) => (
            <g key={`y${t}`}>
              <line x1={PAD.left} x2={W - PAD.right} y1={y(t)} y2={y(t)} />
              <text x={PAD.left - 8} y={y(t)} dy="0.32em" textAnchor="end">
                {t}
              </text>
            </g>
          ))}
          {xTicks.map((t) => (
            <text key={`x${t}`} x={x(t)} y={H - PAD.bottom + 18} textAnchor="middle">
              {formatNumber(t)}
            </text>
          ))}
          <text x={PAD.left + plotW / 2} y={H - 4} textAnchor="middle" className="chart-axis-label">
            Step
          </text>
          <text
            transform={`translate(14 ${PAD.top + plotH / 2}) rotate(-90)`}
            textAnchor="middle"
            className="chart-axis-label"
          >
            Loss
          </text>
        </g>
        <path className="chart-line" d={d} fill="none" data-testid="loss-path" />
        <circle className="chart-dot" cx={x(last.step)} cy={y(last.loss)} r={4} />
      </svg>
      <figcaption id={captionId} className="chart-caption">{summary}</figcaption>
      <details className="chart-table">
        <summary>Show loss values as a table</summary>
        <div className="table-scroll" tabIndex={0} role="region" aria-label="Loss values">
          <table>
            <thead>
              <tr>
                <th scope="col">Step</th>
                <th scope="col">Training loss</th>
              </tr>
            </thead>
            <tbody>
              {points.map((p) => (
                <tr key={p.step}>
                  <td>{formatNumber(p.step)}</td>
                  <td>{formatLoss(p.loss)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
