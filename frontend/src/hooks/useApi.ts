import { useCallback, useEffect, useRef, useState } from "react";
import { isAbortError } from "../api";

export interface ApiState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** Load again now (keeps showing the current data meanwhile). */
  reload: () => void;
}

export interface UseApiOptions<T> {
  /**
   * Poll: given the latest data, return the delay in ms before loading again, or null to stop.
   * Polling goes on after a failed load (with the last good data), so a blip does not end it.
   */
  poll?: (data: T) => number | null;
  /** Skip loading while false. */
  enabled?: boolean;
}

type Key = string | number | boolean | null | undefined;

/**
 * Loads data with `loader` whenever one of `keys` changes, aborting stale requests; optionally
 * polls. Data loaded for other keys is never returned.
 */
export function useApi<T>(
  loader: (signal: AbortSignal) => Promise<T>,
  keys: readonly Key[],
  options: UseApiOptions<T> = {},
): ApiState<T> {
  const enabled = options.enabled ?? true;
  const key = JSON.stringify(keys);
  const [state, setState] = useState<{ key: string; data?: T; error?: unknown; loading: boolean }>(
    { key, loading: enabled },
  );
  const [tick, setTick] = useState(0);
  const loaderRef = useRef(loader);
  const pollRef = useRef(options.poll);
  const lastGood = useRef<{ key: string; data: T } | null>(null);

  useEffect(() => {
    loaderRef.current = loader;
    pollRef.current = options.poll;
  });

  useEffect(() => {
    if (!enabled) return;
    const ctrl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const schedule = (data: T) => {
      const delay = pollRef.current?.(data);
      if (delay != null) timer = setTimeout(() => setTick((t) => t + 1), delay);
    };

    setState((s) => (s.key === key ? { ...s, loading: true } : { key, loading: true }));
    loaderRef.current(ctrl.signal).then(
      (data) => {
        if (ctrl.signal.aborted) return;
        lastGood.current = { key, data };
        setState({ key, data, error: undefined, loading: false });
        schedule(data);
      },
      (error: unknown) => {
        if (ctrl.signal.aborted || isAbortError(error)) return;
        const previous = lastGood.current?.key === key ? lastGood.current.data : undefined;
        setState({ key, data: previous, error, loading: false });
        if (previous !== undefined) schedule(previous);
      },
    );
    return () => {
      ctrl.abort();
      if (timer) clearTimeout(timer);
    };
  }, [key, tick, enabled]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  const current = state.key === key;
  return {
    data: current ? state.data : undefined,
    error: current ? state.error : undefined,
    loading: enabled && (!current || state.loading),
    reload,
  };
}
