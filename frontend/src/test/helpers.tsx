import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { vi } from "vitest";
import { RouterProvider } from "../router";

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

/** A server-sent events Response with these events ([name, data] pairs). */
export function sseResponse(events: [string | null, unknown][]): Response {
  const text = events
    .map(([name, data]) => `${name ? `event: ${name}\n` : ""}data: ${JSON.stringify(data)}\n\n`)
    .join("");
  return new Response(text, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

export interface SeenRequest {
  method: string;
  headers: Headers;
  body: string | null;
  search: string;
}

/**
 * Replaces global fetch with a mock that answers by URL path (no origin, no query string);
 * the handler also gets the method, headers, body text and query string.
 */
export function mockFetch(
  handler: (path: string, req: SeenRequest) => Response | Promise<Response>,
) {
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(new URL(String(input), "http://localhost"), init);
    const url = new URL(request.url);
    const body = request.method === "GET" || request.method === "HEAD" ? null : await request.clone().text();
    return handler(url.pathname, {
      method: request.method,
      headers: request.headers,
      body,
      search: url.search,
    });
  });
  vi.stubGlobal("fetch", fn);
  return fn;
}

/** Renders with a fresh query cache (no retries) and the router, as main.tsx does. */
export function renderWithProviders(ui: ReactElement) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <RouterProvider>{ui}</RouterProvider>
    </QueryClientProvider>,
  );
}
