import { request } from "./client";
import type { ListResponse, Model } from "./types";

export function listModels(signal?: AbortSignal): Promise<ListResponse<Model>> {
  return request<ListResponse<Model>>("/v1/models", { signal });
}

/** Fine-tuned models are named `ft:…` and name their parent; everything else is a base model. */
export function isFineTuned(model: Model): boolean {
  return model.id.startsWith("ft:") || Boolean(model.parent);
}
