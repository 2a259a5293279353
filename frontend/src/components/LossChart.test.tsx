import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { JobEvent } from "../api";
import { LossChart, lossPoints, niceTicks } from "./LossChart";

function metrics(step: number, loss: number, total = 10): JobEvent {
  return {
    id: `ev-${step}`,
    object: "fine_tuning.job.event",
    created_at: 1_700_000_000 + step,
    level: "info",
    message: `Step ${step}/${total}: loss ${loss}`,
    type: "metrics",
    data: { step, total_steps: total, train_loss: loss, learning_rate: 1e-4, tokens_per_second: 900 },
  };
}

const message: JobEvent = {
  id: "ev-msg",
  object: "fine_tuning.job.event",
  created_at: 1_700_000_000,
  level: "info",
  message: "Training started",
  type: "message",
  data: null,
};

describe("LossChart", () => {
  it("draws a path through the metrics events, in step order", () => {
    // Newest first, as the API returns them, with a message event mixed in.
    const events = [metrics(3, 1.2), metrics(2, 1.6), message, metrics(1, 2.4)];
    const { container } = render(<LossChart events={events} />);

    const chart = screen.getByRole("img", { name: "Training loss by step" });
    expect(chart).toBeInTheDocument();
    const path = container.querySelector("path.chart-line");
    expect(path).not.toBeNull();
    const d = path?.getAttribute("d") ?? "";
    expect(d).toMatch(/^M[\d.]+,[\d.]+ L[\d.]+,[\d.]+ L[\d.]+,[\d.]+$/);
    // x grows with the step; y falls as the loss falls (SVG y points down).
    const coords = d.split(" ").map((p) => p.slice(1).split(",").map(Number));
    expect(coords[0]![0]).toBeLessThan(coords[2]![0]!);
    expect(coords[0]![1]).toBeLessThan(coords[2]![1]!);
    expect(screen.getByText(/Training loss from 2\.400 at step 1 to 1\.200 at step 3 of 10/)).toBeInTheDocument();
  });

  it("shows an empty state without metrics", () => {
    const { container } = render(<LossChart events={[message]} />);
    expect(container.querySelector("path")).toBeNull();
    expect(screen.getByText(/No loss values yet/)).toBeInTheDocument();
  });

  it("keeps one point per step", () => {
    const points = lossPoints([metrics(1, 2), { ...metrics(1, 1.5), id: "dup", created_at: 1_800_000_000 }]);
    expect(points).toEqual([{ step: 1, loss: 1.5, totalSteps: 10 }]);
  });
});

describe("niceTicks", () => {
  it("picks round steps inside the range", () => {
    expect(niceTicks(0.46, 2.01, 4)).toEqual([0.5, 1, 1.5, 2]);
    expect(niceTicks(0, 120, 5)).toEqual([0, 20, 40, 60, 80, 100, 120]);
  });
});
