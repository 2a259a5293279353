// Evaluation and the registry: gated promotion, alias history, adapter downloads and exports,
// eval runs and decision reports.
import { rawRequest } from "./client";
import { api, call } from "./http";
import type { components } from "./schema";
import type { ListResponse } from "./types";

type Schemas = components["schemas"];
export type Promotion = Schemas["PromotionPublic"];
export type AliasEvent = Schemas["AliasEventPublic"];
export type AdapterExport = Schemas["AdapterExportPublic"];
export type EvalRun = Schemas["EvalRunPublic"];
export type EvalRunRow = Schemas["EvalRunRowPage"]["data"][number];
export type EvalRunRowPage = Schemas["EvalRunRowPage"];
export type DecisionReportObject = Schemas["DecisionReportPublic"];
export type EvalRunCreate = Schemas["EvalRunCreate"];
export type DecisionReportCreate = Schemas["DecisionReportCreate"];
export type FewShot = { role: "user" | "assistant"; content: string }[];

/** Repoints an existing alias through the promotion gate; `reason` with `force` overrides it. */
export function promoteGated(name: string, adapter: string, override?: { reason: string }): Promise<Promotion> {
  const body = override ? { adapter, force: true, reason: override.reason } : { adapter };
  return call(api.POST("/v1/aliases/{name}/promote", { params: { path: { name } }, body }));
}

export function getAliasHistory(name: string, signal?: AbortSignal): Promise<ListResponse<AliasEvent>> {
  return call(api.GET("/v1/aliases/{name}/history", { params: { path: { name } }, signal }));
}

export function deleteAdapter(adapterId: string): Promise<unknown> {
  return call(api.DELETE("/v1/adapters/{adapter_id}", { params: { path: { adapter_id: adapterId } } }));
}

async function blobOf(path: string): Promise<Blob> {
  const res = await rawRequest(path, { headers: { Accept: "*/*" } });
  return res.blob();
}

/** The adapter's files, lineage and decision report as a zip. */
export function getAdapterZip(adapterId: string): Promise<Blob> {
  return blobOf(`/v1/adapters/${encodeURIComponent(adapterId)}/content`);
}

export function createExport(adapterId: string, kind: "merged" | "adapter"): Promise<AdapterExport> {
  return call(
    api.POST("/v1/adapters/{adapter_id}/exports", { params: { path: { adapter_id: adapterId } }, body: { kind } }),
  );
}

export function getExport(adapterId: string, exportId: string, signal?: AbortSignal): Promise<AdapterExport> {
  return call(
    api.GET("/v1/adapters/{adapter_id}/exports/{export_id}", {
      params: { path: { adapter_id: adapterId, export_id: exportId } },
      signal,
    }),
  );
}

export function getExportZip(adapterId: string, exportId: string): Promise<Blob> {
  return blobOf(`/v1/adapters/${encodeURIComponent(adapterId)}/exports/${encodeURIComponent(exportId)}/content`);
}

export function listEvalRuns(signal?: AbortSignal): Promise<ListResponse<EvalRun>> {
  return call(api.GET("/v1/eval_runs", { params: { query: { limit: 100 } }, signal }));
}

export function getEvalRun(runId: string, signal?: AbortSignal): Promise<EvalRun> {
  return call(api.GET("/v1/eval_runs/{run_id}", { params: { path: { run_id: runId } }, signal }));
}

export function createEvalRun(body: EvalRunCreate): Promise<EvalRun> {
  return call(api.POST("/v1/eval_runs", { body }));
}

export function cancelEvalRun(runId: string): Promise<EvalRun> {
  return call(api.POST("/v1/eval_runs/{run_id}/cancel", { params: { path: { run_id: runId } } }));
}

export function listEvalRows(runId: string, signal?: AbortSignal): Promise<EvalRunRowPage> {
  return call(
    api.GET("/v1/eval_runs/{run_id}/rows", { params: { path: { run_id: runId }, query: { limit: 100 } }, signal }),
  );
}

/** The job's latest decision report, or null when it has none yet (404). */
export async function getDecisionReport(jobId: string, signal?: AbortSignal): Promise<DecisionReportObject | null> {
  try {
    return await call(
      api.GET("/v1/fine_tuning/jobs/{job_id}/decision_report", { params: { path: { job_id: jobId } }, signal }),
    );
  } catch (err) {
    if (err instanceof Error && "status" in err && (err as { status: number }).status === 404) return null;
    throw err;
  }
}

export function createDecisionReport(jobId: string, body: DecisionReportCreate): Promise<DecisionReportObject> {
  return call(
    api.POST("/v1/fine_tuning/jobs/{job_id}/decision_report", { params: { path: { job_id: jobId } }, body }),
  );
}
