import { rawRequest } from "./client";
import { api, call } from "./http";
import type { Adapter, Alias, DriftReport, Feedback, ListResponse, Model, UsagePage } from "./types";

export function listModels(signal?: AbortSignal): Promise<ListResponse<Model>> {
  return call(api.GET("/v1/models", { signal }));
}

/** Fine-tuned models are named `ft:…` and name their parent; everything else is a base model. */
export function isFineTuned(model: Model): boolean {
  return model.id.startsWith("ft:") || Boolean(model.parent);
}

export function listAdapters(signal?: AbortSignal): Promise<ListResponse<Adapter>> {
  return call(api.GET("/v1/adapters", { params: { query: { limit: 100 } }, signal }));
}

export function getDrift(adapterId: string, signal?: AbortSignal): Promise<DriftReport> {
  return call(
    api.GET("/v1/adapters/{adapter_id}/drift", { params: { path: { adapter_id: adapterId } }, signal }),
  );
}

export function listAliases(signal?: AbortSignal): Promise<ListResponse<Alias>> {
  return call(api.GET("/v1/aliases", { signal }));
}

/** Points `name` at an adapter version: creates the alias, or repoints it when it exists. */
export function promoteAlias(name: string, adapter: string, exists: boolean): Promise<Alias> {
  return exists
    ? call(api.POST("/v1/aliases/{name}", { params: { path: { name } }, body: { adapter } }))
    : call(api.POST("/v1/aliases", { body: { name, adapter } }));
}

export function rollbackAlias(name: string): Promise<Alias> {
  return call(api.POST("/v1/aliases/{name}/rollback", { params: { path: { name } } }));
}

export function getUsage(
  query: { start_date?: string; end_date?: string; model?: string } = {},
  signal?: AbortSignal,
): Promise<UsagePage> {
  return call(api.GET("/v1/usage", { params: { query }, signal }));
}

export function sendFeedback(completionId: string, rating: "up" | "down"): Promise<Feedback> {
  return call(api.POST("/v1/feedback", { body: { completion_id: completionId, rating } }));
}

/** A file's raw bytes (the job's results CSV, …) as a Blob, for download. */
export async function getFileContent(fileId: string): Promise<Blob> {
  const res = await rawRequest(`/v1/files/${encodeURIComponent(fileId)}/content`, {
    headers: { Accept: "*/*" },
  });
  return res.blob();
}
