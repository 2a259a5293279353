import { vi } from "vitest";

/** A JSON Response, like the API's. */
export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

export function apiError(message: string, status: number, code: string | null = null): Response {
  return jsonResponse(
    { error: { message, type: "invalid_request_error", param: null, code } },
    status,
  );
}

/** Replaces global fetch with a mock that answers by URL path. */
export function mockFetch(handler: (url: string, init?: RequestInit) => Response | Promise<Response>) {
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    return handler(url, init);
  });
  vi.stubGlobal("fetch", fn);
  return fn;
}
