import { request } from "./client";
import type { CreateJobRequest, FineTuningJob, JobEvent, ListResponse } from "./types";

const base = "/v1/fine_tuning/jobs";
const jobPath = (id: string) => `${base}/${encodeURIComponent(id)}`;

export function listJobs(signal?: AbortSignal): Promise<ListResponse<FineTuningJob>> {
  return request<ListResponse<FineTuningJob>>(base, { signal });
}

export function createJob(body: CreateJobRequest): Promise<FineTuningJob> {
  return request<FineTuningJob>(base, { method: "POST", body });
}

export function getJob(id: string, signal?: AbortSignal): Promise<FineTuningJob> {
  return request<FineTuningJob>(jobPath(id), { signal });
}

export function cancelJob(id: string): Promise<FineTuningJob> {
  return request<FineTuningJob>(`${jobPath(id)}/cancel`, { method: "POST" });
}

/** The job's events, newest first. */
export function listJobEvents(
  id: string,
  opts: { limit?: number; signal?: AbortSignal } = {},
): Promise<ListResponse<JobEvent>> {
  return request<ListResponse<JobEvent>>(`${jobPath(id)}/events`, {
    query: { limit: opts.limit ?? 100 },
    signal: opts.signal,
  });
}
