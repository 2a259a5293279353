import { useQuery } from "@tanstack/react-query";
import { useMemo, useRef, useState, useEffect, type ReactNode } from "react";
import {
  cancelJob,
  errorMessage,
  isTerminalStatus,
  listCheckpoints,
  type FineTuningJob,
  type JobEvent,
  type MetricsData,
} from "../api";
import { LossChart, lossPoints } from "../components/charts/LossChart";
import { DecisionReportPanel } from "../components/DecisionReportPanel";
import { JobTimeline } from "../components/JobTimeline";
import { ProgressBar } from "../components/ProgressBar";
import { StatusBadge } from "../components/StatusBadge";
import { Empty, ErrorMessage, Loading } from "../components/States";
import { useJobStream } from "../hooks/useJobStream";
import { usePageTitle } from "../hooks/usePageTitle";
import {
  formatDuration,
  formatLoss,
  formatNumber,
  formatTimestamp,
  isoTimestamp,
  parallelismLabel,
  statusLabel,
} from "../lib/format";
import { Link } from "../router";

function metricsOf(events: readonly JobEvent[]): { at: number; data: Partial<MetricsData> }[] {
  return events
    .filter((e) => e.type === "metrics" && e.data && typeof e.data.step === "number")
    .map((e) => ({ at: e.created_at, data: e.data as Partial<MetricsData> }));
}

/** The newest metrics event's data, if any (events may come in any order). */
export function latestMetrics(events: readonly JobEvent[]): Partial<MetricsData> | null {
  let best: { at: number; data: Partial<MetricsData> } | null = null;
  for (const m of metricsOf(events)) {
    const step = m.data.step as number;
    const bestStep = best ? (best.data.step as number) : -Infinity;
    if (!best || step > bestStep || (step === bestStep && m.at > best.at)) best = m;
  }
  return best ? best.data : null;
}

/** Seconds left, from the pace of the steps reported so far; null until two steps are known. */
export function etaSeconds(events: readonly JobEvent[]): number | null {
  const points = metricsOf(events).sort((a, b) => (a.data.step as number) - (b.data.step as number));
  const first = points[0];
  const last = points[points.length - 1];
  if (!first || !last || last === first) return null;
  const total = last.data.total_steps;
  const steps = (last.data.step as number) - (first.data.step as number);
  if (typeof total !== "number" || steps <= 0) return null;
  const perStep = (last.at - first.at) / steps;
  return Math.max(0, (total - (last.data.step as number)) * perStep);
}

export function JobDetailPage({ jobId }: { jobId: string }) {
  usePageTitle(`Fine-tune ${jobId}`);
  const stream = useJobStream(jobId);
  const job = stream.job;
  const headingRef = useRef<HTMLHeadingElement>(null);
  const onCancelled = () => {
    // The cancel button goes away; keep focus on the page instead of losing it.
    headingRef.current?.focus();
  };
  // One heading element for the loading and loaded states, so focus placed on it stays there.
  return (
    <div className="page">
      <BackLink />
      <div className="page-header">
        <h1 tabIndex={-1} className="break" ref={headingRef}>
          {job ? (job.fine_tuned_model ?? job.id) : "Fine-tune"}
        </h1>
        {job ? (
          <div className="page-header-actions">
            <span aria-live="polite" aria-atomic="true">
              <span className="visually-hidden">Status: </span>
              <StatusBadge status={job.status} />
            </span>
            {!isTerminalStatus(job.status) ? (
              <CancelJob jobId={job.id} onCancelled={onCancelled} />
            ) : null}
          </div>
        ) : null}
      </div>
      {job === undefined ? (
        stream.error ? (
          <ErrorMessage error={stream.error} title="Could not load this job." onRetry={stream.retry} />
        ) : (
          <Loading label="Loading job…" />
        )
      ) : (
        <JobView
          job={job}
          events={stream.events}
          live={stream.live}
          refreshError={stream.error}
          onRetry={stream.retry}
        />
      )}
    </div>
  );
}

function BackLink() {
  return (
    <p className="back">
      <Link to="/fine-tunes">
        <span aria-hidden="true">← </span>All fine-tunes
      </Link>
    </p>
  );
}

function JobView({
  job,
  events,
  live,
  refreshError,
  onRetry,
}: {
  job: FineTuningJob;
  events: JobEvent[];
  live: boolean;
  refreshError: unknown;
  onRetry: () => void;
}) {
  const terminal = isTerminalStatus(job.status);
  const metrics = useMemo(() => latestMetrics(events), [events]);
  const eta = useMemo(() => (terminal ? null : etaSeconds(events)), [events, terminal]);
  const points = useMemo(
    () => lossPoints(metricsOf(events).map((m) => m.data)),
    [events],
  );
  const step = metrics?.step;
  const total = metrics?.total_steps;
  const hasProgress = typeof step === "number" && typeof total === "number" && total > 0;
  const percent = hasProgress ? Math.min(100, Math.round((step / total) * 100)) : null;

  return (
    <>
      {refreshError ? (
        <ErrorMessage
          error={refreshError}
          title="Lost the live connection to this job; reconnecting."
          onRetry={onRetry}
        />
      ) : null}

      {job.status === "failed" && job.error ? (
        <div className="state state-error" role="alert">
          <p>
            <strong>The fine-tune failed.</strong> {job.error.message}
          </p>
        </div>
      ) : null}

      {job.status === "succeeded" && job.fine_tuned_model ? (
        <div className="state state-success">
          <p>
            Your model <strong className="mono break">{job.fine_tuned_model}</strong> is ready.{" "}
            <Link to={`/playground?model=${encodeURIComponent(job.fine_tuned_model)}`}>
              Try it in the Playground
            </Link>
          </p>
        </div>
      ) : null}

      <section className="card" aria-labelledby="progress-heading">
        <h2 id="progress-heading">Progress</h2>
        <JobTimeline job={job} />
        {live ? <p className="hint live-indicator">Live: updates as training reports them.</p> : null}
        {hasProgress ? (
          <>
            <ProgressBar
              value={step}
              max={total}
              label="Training progress"
              valueText={`Step ${step} of ${total}`}
            />
            <p className="progress-text">
              Step {formatNumber(step)} of {formatNumber(total)} ({percent}%)
              {typeof metrics?.train_loss === "number" ? (
                <> · loss {formatLoss(metrics.train_loss)}</>
              ) : null}
              {typeof metrics?.tokens_per_second === "number" ? (
                <> · {formatNumber(metrics.tokens_per_second)} tokens/s</>
              ) : null}
            </p>
          </>
        ) : (
          <p className="hint">
            {terminal
              ? "No training steps were reported."
              : `${statusLabel(job.status)}. Progress appears once training starts.`}
          </p>
        )}
        {eta !== null ? (
          <p className="hint" data-testid="eta">
            About {formatDuration(eta)} left.
          </p>
        ) : !terminal && job.estimated_finish ? (
          <p className="hint">Estimated finish: {formatTimestamp(job.estimated_finish)}</p>
        ) : null}
      </section>

      <section className="card" aria-labelledby="loss-heading">
        <h2 id="loss-heading">Loss</h2>
        <LossChart points={points} />
      </section>

      <section className="card" aria-labelledby="checkpoints-heading">
        <h2 id="checkpoints-heading">Checkpoints</h2>
        <Checkpoints jobId={job.id} status={job.status} />
      </section>

      {job.status === "succeeded" ? <DecisionReportPanel jobId={job.id} /> : null}

      <section className="card" aria-labelledby="details-heading">
        <h2 id="details-heading">Details</h2>
        <JobFacts job={job} />
      </section>

      <section className="card" aria-labelledby="events-heading">
        <h2 id="events-heading">Events</h2>
        <EventLog events={events} />
      </section>
    </>
  );
}

function CancelJob({ jobId, onCancelled }: { jobId: string; onCancelled: () => void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const cancelButton = useRef<HTMLButtonElement>(null);
  const refocus = useRef(false);

  useEffect(() => {
    if (!confirming && refocus.current) {
      refocus.current = false;
      cancelButton.current?.focus();
    }
  }, [confirming]);

  const cancel = async () => {
    setBusy(true);
    setError(null);
    try {
      await cancelJob(jobId);
      setConfirming(false);
      onCancelled();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  if (!confirming) {
    return (
      <button
        ref={cancelButton}
        type="button"
        className="button button-danger"
        onClick={() => setConfirming(true)}
      >
        Cancel job
      </button>
    );
  }
  return (
    <div className="confirm" role="group" aria-label="Confirm cancellation">
      <span>Stop training? No model will be produced.</span>
      <button
        type="button"
        className="button button-danger"
        onClick={cancel}
        disabled={busy}
        autoFocus
      >
        {busy ? "Cancelling…" : "Yes, cancel job"}
      </button>
      <button
        type="button"
        className="button"
        onClick={() => {
          refocus.current = true;
          setError(null);
          setConfirming(false);
        }}
        disabled={busy}
      >
        Keep running
      </button>
      {error ? (
        <p className="field-error" role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}

function Checkpoints({ jobId, status }: { jobId: string; status: string }) {
  const checkpoints = useQuery({
    // A new status (running → succeeded) is when new checkpoints are likely.
    queryKey: ["checkpoints", jobId, status],
    queryFn: ({ signal }) => listCheckpoints(jobId, signal),
  });
  if (checkpoints.isPending) return <Loading label="Loading checkpoints…" />;
  if (checkpoints.isError) {
    return (
      <ErrorMessage
        error={checkpoints.error}
        title="Could not load checkpoints."
        onRetry={() => void checkpoints.refetch()}
      />
    );
  }
  const rows = checkpoints.data.data;
  if (rows.length === 0) return <Empty title="No checkpoints yet. One is saved at the end of each epoch." />;
  return (
    <div className="table-scroll" tabIndex={0} role="region" aria-label="Checkpoints">
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Step</th>
            <th scope="col">Checkpoint</th>
            <th scope="col">Train loss</th>
            <th scope="col">Saved</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((c) => {
            const loss = (c.metrics as { train_loss?: unknown }).train_loss;
            return (
              <tr key={c.id}>
                <td className="num">{c.step_number}</td>
                <td className="mono break">{c.fine_tuned_model_checkpoint}</td>
                <td className="num">{typeof loss === "number" ? formatLoss(loss) : "—"}</td>
                <td>{formatTimestamp(c.created_at)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function hyperparameterRows(hp: Record<string, unknown> | null): [string, string][] {
  if (!hp) return [];
  const show = (v: unknown): string | null => {
    if (v === null || v === undefined || v === "") return null;
    if (typeof v === "number") return String(Number(v.toPrecision(6)));
    return String(v);
  };
  const rows: [string, unknown][] = [
    ["Epochs", hp.n_epochs],
    ["Batch size", hp.batch_size],
    ["Learning rate multiplier", hp.learning_rate_multiplier],
    ["LoRA rank", hp.lora_r],
    ["LoRA alpha", hp.lora_alpha],
    ["LoRA dropout", hp.lora_dropout],
    ["Max sequence length", hp.max_seq_length],
    ["Quantization", hp.quantization],
    ["GPUs", hp.n_gpus],
    // A job on one GPU does not split its work: its default "ddp" says nothing.
    [
      "Parallelism",
      typeof hp.parallelism === "string" && (Number(hp.n_gpus ?? 1) > 1 || hp.parallelism !== "ddp")
        ? parallelismLabel(hp.parallelism)
        : null,
    ],
  ];
  return rows.flatMap(([k, v]) => {
    const s = show(v);
    return s === null ? [] : [[k, s] as [string, string]];
  });
}

function JobFacts({ job }: { job: FineTuningJob }) {
  const rows: [string, ReactNode][] = [
    ["Job ID", <span className="mono break">{job.id}</span>],
    ["Base model", job.model],
    [
      "Training file",
      <Link to={`/datasets/${encodeURIComponent(job.training_file)}`} className="mono break">
        {job.training_file}
      </Link>,
    ],
    ...(job.validation_file
      ? ([
          [
            "Validation file",
            <Link to={`/datasets/${encodeURIComponent(job.validation_file)}`} className="mono break">
              {job.validation_file}
            </Link>,
          ],
        ] as [
          string,
          ReactNode,
        ][])
      : []),
    ["Created", formatTimestamp(job.created_at)],
    ["Finished", job.finished_at ? formatTimestamp(job.finished_at) : "—"],
    ["Trained tokens", formatNumber(job.trained_tokens)],
    ...hyperparameterRows(job.hyperparameters),
  ];
  return (
    <dl className="facts facts-wide">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

function EventLog({ events }: { events: JobEvent[] }) {
  const [showMetrics, setShowMetrics] = useState(false);
  const shown = showMetrics ? events : events.filter((e) => e.type !== "metrics");
  const metricsCount = events.length - events.filter((e) => e.type !== "metrics").length;

  return (
    <>
      {metricsCount > 0 ? (
        <label className="checkbox">
          <input
            type="checkbox"
            checked={showMetrics}
            onChange={(e) => setShowMetrics(e.target.checked)}
          />
          Show step metrics ({formatNumber(metricsCount)})
        </label>
      ) : null}
      {shown.length === 0 ? (
        <Empty title={metricsCount > 0 ? "Only step metrics so far." : "No events yet."}>
          {metricsCount > 0 ? <p>Tick "Show step metrics" to see them.</p> : null}
        </Empty>
      ) : (
        <ol className="event-log" aria-label="Events, newest first">
          {shown.map((e) => (
            <li key={e.id} className={`event event-${e.level}`}>
              <time dateTime={isoTimestamp(e.created_at)}>{formatTimestamp(e.created_at)}</time>
              {e.level !== "info" ? <span className="event-level">{e.level}</span> : null}
              <span className="event-message">{e.message}</span>
            </li>
          ))}
        </ol>
      )}
    </>
  );
}
