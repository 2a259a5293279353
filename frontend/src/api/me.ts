import { api, call } from "./http";
import type { Tenant } from "./types";

/** The tenant the key belongs to. Pass `apiKey` to check a key before storing it. */
export function getMe(opts: { apiKey?: string; signal?: AbortSignal } = {}): Promise<Tenant> {
  const headers = opts.apiKey ? { Authorization: `Bearer ${opts.apiKey}` } : undefined;
  return call(api.GET("/v1/me", { headers, signal: opts.signal }), { keyGiven: Boolean(opts.apiKey) });
}
