import { QueryClient } from "@tanstack/react-query";
import { ApiError } from "../api";

/** Retries network blips and server errors, never a request the API refused (4xx). */
export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        retry: (count, err) => count < 2 && !(err instanceof ApiError && err.status >= 400 && err.status < 500),
        refetchOnWindowFocus: false,
      },
    },
  });
}
