import { request } from "./client";
import type { Tenant } from "./types";

/** The tenant the key belongs to. Pass `apiKey` to check a key before storing it. */
export function getMe(opts: { apiKey?: string; signal?: AbortSignal } = {}): Promise<Tenant> {
  return request<Tenant>("/v1/me", opts);
}
