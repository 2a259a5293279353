// Where a job is in its life: validating → queued → running → succeeded | failed | cancelled.
import type { FineTuningJob } from "../api";
import { formatTimestamp, statusLabel } from "../lib/format";

const STEPS = ["validating_files", "queued", "running"] as const;

export function JobTimeline({ job }: { job: FineTuningJob }) {
  const terminal = ["succeeded", "failed", "cancelled"].includes(job.status);
  const index = terminal ? STEPS.length : STEPS.indexOf(job.status as (typeof STEPS)[number]);
  const last = terminal ? job.status : "succeeded";
  const steps = [...STEPS, last];
  return (
    <ol className="timeline" aria-label="Job status timeline">
      {steps.map((s, i) => {
        const state = i < index ? "done" : i === index ? "current" : "upcoming";
        return (
          <li key={s} className={`timeline-step timeline-${state} timeline-${s}`} aria-current={state === "current" ? "step" : undefined}>
            <span className="timeline-dot" aria-hidden="true" />
            <span className="timeline-label">{statusLabel(s)}</span>
            <span className="visually-hidden">
              {state === "done" ? " (done)" : state === "current" ? " (now)" : " (not yet)"}
            </span>
            {i === 0 ? <span className="timeline-time">{formatTimestamp(job.created_at)}</span> : null}
            {i === steps.length - 1 && job.finished_at ? (
              <span className="timeline-time">{formatTimestamp(job.finished_at)}</span>
            ) : null}
          </li>
        );
      })}
    </ol>
  );
}
