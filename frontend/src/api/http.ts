// The typed API client: openapi-fetch over the paths generated from the API's OpenAPI
// document (schema.ts, `npm run gen:api`). Every call goes through `call`, which turns the
// OpenAI-style error body into an ApiError whose message is fit to show.
import createClient, { type Middleware } from "openapi-fetch";
import { ApiError, NETWORK_ERROR_MESSAGE, errorFromBody, getApiKey, isAbortError, notifyUnauthorized } from "./client";
import type { paths } from "./schema";

const auth: Middleware = {
  onRequest({ request }) {
    const key = getApiKey();
    if (key && !request.headers.has("Authorization")) {
      request.headers.set("Authorization", `Bearer ${key}`);
    }
    return request;
  },
};

export const api = createClient<paths>({
  baseUrl: typeof window === "undefined" ? "" : window.location.origin,
  // Looked up per call so tests can stub the global fetch.
  fetch: (input: Request) => globalThis.fetch(input),
});
api.use(auth);

interface Result<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Awaits an openapi-fetch call and returns its data, or throws an ApiError. */
export async function call<T>(pending: Promise<Result<T>>, opts: { keyGiven?: boolean } = {}): Promise<T> {
  let result: Result<T>;
  try {
    result = await pending;
  } catch (err) {
    if (isAbortError(err)) throw err;
    throw new ApiError(NETWORK_ERROR_MESSAGE, 0, { code: "network_error" });
  }
  const { data, error, response } = result;
  if (!response.ok || error !== undefined) {
    const err = errorFromBody(response.status, error);
    if (response.status === 401 && !opts.keyGiven) notifyUnauthorized(err);
    throw err;
  }
  return data as T;
}
