import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState, type ReactElement } from "react";
import {
  clearApiKey,
  errorMessage,
  getApiKey,
  getMe,
  onUnauthorized,
  setApiKey,
  type Tenant,
} from "./api";
import { Layout, type Section } from "./components/Layout";
import { Loading } from "./components/States";
import { DatasetsPage } from "./pages/DatasetsPage";
import { EvaluationsPage } from "./pages/EvaluationsPage";
import { FineTunesPage } from "./pages/FineTunesPage";
import { JobDetailPage } from "./pages/JobDetailPage";
import { ModelsPage } from "./pages/ModelsPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { PlaygroundPage } from "./pages/PlaygroundPage";
import { SignInPage } from "./pages/SignInPage";
import { UsagePage } from "./pages/UsagePage";
import { matchPath, useRouter } from "./router";

type Auth =
  | { state: "checking" }
  | { state: "signed-out"; notice?: string }
  | { state: "unreachable"; message: string }
  | { state: "signed-in"; tenant: Tenant };

function initialAuth(): Auth {
  return getApiKey() ? { state: "checking" } : { state: "signed-out" };
}

interface Route {
  /** Focus moves to the page heading when this changes. */
  page: string;
  section: Section;
  element: ReactElement;
}

function resolveRoute(pathname: string): Route {
  let params: Record<string, string> | null;
  if (matchPath("/datasets", pathname)) {
    return { page: "datasets", section: "datasets", element: <DatasetsPage fileId={null} /> };
  }
  if ((params = matchPath("/datasets/:fileId", pathname))) {
    return {
      page: "datasets",
      section: "datasets",
      element: <DatasetsPage fileId={params.fileId ?? null} />,
    };
  }
  if (matchPath("/fine-tunes", pathname)) {
    return { page: "fine-tunes", section: "fine-tunes", element: <FineTunesPage /> };
  }
  if ((params = matchPath("/fine-tunes/:jobId", pathname))) {
    const jobId = params.jobId as string;
    return {
      page: `job:${jobId}`,
      section: "fine-tunes",
      element: <JobDetailPage key={jobId} jobId={jobId} />,
    };
  }
  if (matchPath("/models", pathname)) {
    return { page: "models", section: "models", element: <ModelsPage adapterId={null} /> };
  }
  if ((params = matchPath("/models/:adapterId", pathname))) {
    return {
      page: "models",
      section: "models",
      element: <ModelsPage adapterId={params.adapterId ?? null} />,
    };
  }
  if (matchPath("/evaluations", pathname)) {
    return { page: "evaluations", section: "evaluations", element: <EvaluationsPage runId={null} /> };
  }
  if ((params = matchPath("/evaluations/:runId", pathname))) {
    return { page: "evaluations", section: "evaluations", element: <EvaluationsPage runId={params.runId ?? null} /> };
  }
  if (matchPath("/usage", pathname)) {
    return { page: "usage", section: "usage", element: <UsagePage /> };
  }
  if (matchPath("/playground", pathname)) {
    return { page: "playground", section: "playground", element: <PlaygroundPage /> };
  }
  return { page: "not-found", section: null, element: <NotFoundPage /> };
}

export function App() {
  const { location, navigate } = useRouter();
  const [auth, setAuth] = useState<Auth>(initialAuth);
  const [checkTick, setCheckTick] = useState(0);
  const queryClient = useQueryClient();

  // Restore a session from a key kept in this tab.
  useEffect(() => {
    if (auth.state !== "checking") return;
    const key = getApiKey();
    if (!key) {
      setAuth({ state: "signed-out" });
      return;
    }
    const ctrl = new AbortController();
    getMe({ apiKey: key, signal: ctrl.signal }).then(
      (tenant) => setAuth({ state: "signed-in", tenant }),
      (err: unknown) => {
        if (ctrl.signal.aborted) return;
        const status = (err as { status?: number }).status;
        if (status === 401 || status === 403) {
          clearApiKey();
          setAuth({
            state: "signed-out",
            notice: `Your saved API key was not accepted: ${errorMessage(err)}`,
          });
        } else {
          setAuth({ state: "unreachable", message: errorMessage(err) });
        }
      },
    );
    return () => ctrl.abort();
  }, [auth.state, checkTick]);

  // A key revoked mid-session signs the person out.
  useEffect(
    () =>
      onUnauthorized((err) => {
        clearApiKey();
        queryClient.clear();
        setAuth({ state: "signed-out", notice: `You were signed out: ${err.message}` });
      }),
    [queryClient],
  );

  const signIn = useCallback(
    (tenant: Tenant, key: string) => {
      setApiKey(key);
      setAuth({ state: "signed-in", tenant });
      if (location.pathname === "/") navigate("/datasets", { replace: true });
    },
    [location.pathname, navigate],
  );

  const signOut = useCallback(() => {
    clearApiKey();
    // Nothing fetched with this key may show after the next sign-in.
    queryClient.clear();
    setAuth({ state: "signed-out", notice: "You have signed out." });
  }, [queryClient]);

  useEffect(() => {
    if (auth.state === "signed-in" && location.pathname === "/") {
      navigate("/datasets", { replace: true });
    }
  }, [auth.state, location.pathname, navigate]);

  const route = resolveRoute(location.pathname);

  // Move focus to the new page's heading after client-side navigation (not on first load).
  const lastPage = useRef<string | null>(null);
  useEffect(() => {
    if (auth.state !== "signed-in") {
      lastPage.current = null;
      return;
    }
    if (lastPage.current !== null && lastPage.current !== route.page) {
      const heading = document.querySelector<HTMLElement>("main h1");
      heading?.focus();
    }
    lastPage.current = route.page;
  }, [route.page, auth.state]);

  if (auth.state === "checking") {
    return (
      <div className="center-page">
        <Loading label="Checking your session…" />
      </div>
    );
  }
  if (auth.state === "unreachable") {
    return (
      <div className="center-page">
        <div className="card narrow">
          <h1>Can't reach Loraplex</h1>
          <p role="alert">{auth.message}</p>
          <div className="form-actions">
            <button
              type="button"
              className="button button-primary"
              onClick={() => {
                setAuth({ state: "checking" });
                setCheckTick((t) => t + 1);
              }}
            >
              Try again
            </button>
            <button type="button" className="button" onClick={signOut}>
              Sign out
            </button>
          </div>
        </div>
      </div>
    );
  }
  if (auth.state === "signed-out") {
    return <SignInPage onSignedIn={signIn} notice={auth.notice} />;
  }
  return (
    <Layout tenant={auth.tenant} section={route.section} onSignOut={signOut}>
      {route.element}
    </Layout>
  );
}
