// API key storage, error handling, and `rawRequest` for the streaming routes (chat, job
// events); everything else goes through the typed client in http.ts.

import type { ApiErrorBody } from "./types";

const KEY_STORAGE = "loraplex.apiKey";

export function getApiKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function setApiKey(key: string): void {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function clearApiKey(): void {
  try {
    sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage unavailable: nothing to clear
  }
}

/** An error to show to people: `message` is already in plain words. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string | null;
  readonly code: string | null;
  readonly param: string | null;

  constructor(
    message: string,
    status: number,
    opts: { type?: string | null; code?: string | null; param?: string | null } = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = opts.type ?? null;
    this.code = opts.code ?? null;
    this.param = opts.param ?? null;
  }
}

export const NETWORK_ERROR_MESSAGE =
  "Could not reach the Loraplex API. Check your connection and try again.";

function isErrorBody(value: unknown): value is ApiErrorBody {
  if (typeof value !== "object" || value === null || !("error" in value)) return false;
  const err = (value as { error: unknown }).error;
  return (
    typeof err === "object" &&
    err !== null &&
    typeof (err as { message?: unknown }).message === "string"
  );
}

function fallbackMessage(status: number): string {
  if (status === 401) return "Your API key was not accepted.";
  if (status === 403) return "Your API key is not allowed to do this.";
  if (status === 404) return "Not found.";
  if (status === 413) return "The file is too large.";
  if (status === 429) return "Too many requests. Wait a moment and try again.";
  if (status >= 500) return `The server had a problem (HTTP ${status}). Try again in a moment.`;
  return `The request failed (HTTP ${status}).`;
}

/** Builds an ApiError from a parsed body (or raw text) and an HTTP status. */
export function errorFromBody(status: number, body: unknown): ApiError {
  if (isErrorBody(body)) {
    const { message, type, code, param } = body.error;
    return new ApiError(message || fallbackMessage(status), status, { type, code, param });
  }
  return new ApiError(fallbackMessage(status), status);
}

export async function errorFromResponse(res: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    const text = await res.text();
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  return errorFromBody(res.status, body);
}

/** Turns anything thrown into a sentence fit to show. */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error && err.message) return err.message;
  return "Something went wrong.";
}

export function isAbortError(err: unknown): boolean {
  return err instanceof DOMException
    ? err.name === "AbortError"
    : err instanceof Error && err.name === "AbortError";
}

type UnauthorizedListener = (err: ApiError) => void;
const unauthorizedListeners = new Set<UnauthorizedListener>();

/** Called when a request made with the stored key is refused with 401 (key revoked, …). */
export function onUnauthorized(listener: UnauthorizedListener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export function notifyUnauthorized(err: ApiError): void {
  for (const listener of unauthorizedListeners) listener(err);
}

export interface RequestOptions {
  method?: "GET" | "POST" | "DELETE";
  /** JSON body; FormData is sent as-is. */
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  signal?: AbortSignal;
  /** Use this key instead of the stored one (sign-in checks a key before storing it). */
  apiKey?: string;
  headers?: Record<string, string>;
}

export function buildUrl(path: string, query?: RequestOptions["query"]): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined) params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/** Sends a request and returns the raw Response once it is known to be OK. */
export async function rawRequest(path: string, opts: RequestOptions = {}): Promise<Response> {
  const key = opts.apiKey ?? getApiKey();
  const headers: Record<string, string> = { Accept: "application/json", ...opts.headers };
  if (key) headers.Authorization = `Bearer ${key}`;
  let body: BodyInit | undefined;
  if (opts.body instanceof FormData) {
    body = opts.body;
  } else if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }

  let res: Response;
  try {
    res = await fetch(buildUrl(path, opts.query), {
      method: opts.method ?? "GET",
      headers,
      body,
      signal: opts.signal,
    });
  } catch (err) {
    if (isAbortError(err)) throw err;
    throw new ApiError(NETWORK_ERROR_MESSAGE, 0, { code: "network_error" });
  }

  if (!res.ok) {
    const err = await errorFromResponse(res);
    if (res.status === 401 && opts.apiKey === undefined) notifyUnauthorized(err);
    throw err;
  }
  return res;
}
