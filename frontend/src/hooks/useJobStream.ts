import { useEffect, useRef, useState } from "react";
import { ApiError, followJobEvents, isAbortError, isTerminalStatus, type FineTuningJob, type JobEvent } from "../api";

export const RECONNECT_MS = 3000;
const FLUSH_MS = 100;

export interface JobStream {
  job: FineTuningJob | undefined;
  /** Every event seen, newest first. */
  events: JobEvent[];
  error: unknown;
  /** Connected and the job can still change. */
  live: boolean;
  retry: () => void;
}

/**
 * Follows a job over server-sent events: the job object on every status change and each
 * event as it is written. A dropped connection resumes after the last event seen; a refusal
 * (4xx) stops and is reported.
 */
export function useJobStream(jobId: string): JobStream {
  const [job, setJob] = useState<FineTuningJob | undefined>(undefined);
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [error, setError] = useState<unknown>(undefined);
  const [live, setLive] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const seen = useRef(new Map<string, JobEvent>());

  useEffect(() => {
    const ctrl = new AbortController();
    let after: string | null = null;
    let terminal = false;
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    // Events arrive in bursts (a finished job sends all at once): render them in batches.
    const flush = () => {
      flushTimer = undefined;
      setEvents(
        [...seen.current.values()].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1)),
      );
    };
    const handlers = {
      onJob: (j: FineTuningJob) => {
        terminal = isTerminalStatus(j.status);
        setJob(j);
        setError(undefined);
        setLive(!terminal);
      },
      onEvent: (e: JobEvent) => {
        seen.current.set(e.id, e);
        flushTimer ??= setTimeout(flush, FLUSH_MS);
      },
    };
    (async () => {
      while (!ctrl.signal.aborted && !terminal) {
        try {
          after = await followJobEvents(jobId, handlers, { after, signal: ctrl.signal });
        } catch (err) {
          if (ctrl.signal.aborted || isAbortError(err)) return;
          setError(err);
          setLive(false);
          if (err instanceof ApiError && err.status >= 400 && err.status < 500) return;
        }
        if (!terminal && !ctrl.signal.aborted) await new Promise((r) => setTimeout(r, RECONNECT_MS));
      }
    })();
    return () => {
      ctrl.abort();
      if (flushTimer) clearTimeout(flushTimer);
    };
  }, [jobId, attempt]);

  return { job, events, error, live, retry: () => setAttempt((n) => n + 1) };
}
