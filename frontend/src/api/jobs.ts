import { ApiError, rawRequest } from "./client";
import { api, call } from "./http";
import { createSseParser } from "./sse";
import type { Checkpoint, FineTuningJob, JobCreate, JobEvent, ListResponse } from "./types";

export function listJobs(signal?: AbortSignal): Promise<ListResponse<FineTuningJob>> {
  return call(api.GET("/v1/fine_tuning/jobs", { params: { query: { limit: 100 } }, signal }));
}

export function createJob(body: JobCreate): Promise<FineTuningJob> {
  return call(api.POST("/v1/fine_tuning/jobs", { body }));
}

const jobPath = (id: string) => ({ path: { fine_tuning_job_id: id } });

export function getJob(id: string, signal?: AbortSignal): Promise<FineTuningJob> {
  return call(api.GET("/v1/fine_tuning/jobs/{fine_tuning_job_id}", { params: jobPath(id), signal }));
}

export function cancelJob(id: string): Promise<FineTuningJob> {
  return call(api.POST("/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel", { params: jobPath(id) }));
}

/** The job's events, newest first. */
export function listJobEvents(
  id: string,
  opts: { limit?: number; signal?: AbortSignal } = {},
): Promise<ListResponse<JobEvent>> {
  // The route also streams (text/event-stream); without `stream` it answers the JSON list.
  return call(
    api.GET("/v1/fine_tuning/jobs/{fine_tuning_job_id}/events", {
      params: { ...jobPath(id), query: { limit: opts.limit ?? 100 } },
      signal: opts.signal,
    }),
  ) as Promise<ListResponse<JobEvent>>;
}

export function listCheckpoints(id: string, signal?: AbortSignal): Promise<ListResponse<Checkpoint>> {
  return call(
    api.GET("/v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints", {
      params: { ...jobPath(id), query: { limit: 100 } },
      signal,
    }),
  );
}

export interface JobStreamHandlers {
  onJob: (job: FineTuningJob) => void;
  onEvent: (event: JobEvent) => void;
}

/**
 * Follows `GET …/events?stream=true` (server-sent events, oldest first) until the job is
 * terminal or `signal` aborts. fetch, not EventSource: the API key goes in a header.
 * Resolves with the id of the last event seen, to resume from after a dropped connection.
 */
export async function followJobEvents(
  id: string,
  handlers: JobStreamHandlers,
  opts: { after?: string | null; signal?: AbortSignal } = {},
): Promise<string | null> {
  let last = opts.after ?? null;
  const res = await rawRequest(`/v1/fine_tuning/jobs/${encodeURIComponent(id)}/events`, {
    query: { stream: "true", after: last ?? undefined },
    signal: opts.signal,
    headers: { Accept: "text/event-stream" },
  });
  if (!res.body) throw new ApiError("The server sent an empty response.", res.status);
  const parser = createSseParser((data, event) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    if (event === "job") {
      handlers.onJob(parsed as FineTuningJob);
    } else {
      const e = parsed as JobEvent;
      last = e.id;
      handlers.onEvent(e);
    }
  });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.push(decoder.decode());
    parser.end();
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return last;
}
