import { useId, useRef, useState, type FormEvent } from "react";
import { errorMessage, getMe, type Tenant } from "../api";
import { usePageTitle } from "../hooks/usePageTitle";

export function SignInPage({
  onSignedIn,
  notice,
}: {
  onSignedIn: (tenant: Tenant, key: string) => void;
  notice?: string;
}) {
  usePageTitle("Sign in");
  const keyId = useId();
  const hintId = useId();
  const errorId = useId();
  const inputRef = useRef<HTMLInputElement>(null);
  const [key, setKey] = useState("");
  const [show, setShow] = useState(false);
  const [checking, setChecking] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setError("Enter your API key.");
      inputRef.current?.focus();
      return;
    }
    setChecking(true);
    setError(null);
    try {
      const tenant = await getMe({ apiKey: trimmed });
      onSignedIn(tenant, trimmed);
    } catch (err) {
      setError(errorMessage(err));
      setChecking(false);
      inputRef.current?.focus();
    }
  };

  return (
    <div className="center-page">
      <a className="skip-link" href="#main">
        Skip to main content
      </a>
      <main id="main" tabIndex={-1} className="card narrow signin">
        <p className="brand brand-static">
          <span className="brand-mark" aria-hidden="true" />
          Loraplex
        </p>
        <h1>Sign in</h1>
        <p className="lede">Fine-tune and try open models with your team's API key.</p>
        {notice ? (
          <p className="state state-info" role="status">
            {notice}
          </p>
        ) : null}
        <form onSubmit={onSubmit} noValidate>
          <div className="field">
            <label htmlFor={keyId}>API key</label>
            <div className="input-with-button">
              <input
                ref={inputRef}
                id={keyId}
                name="api-key"
                type={show ? "text" : "password"}
                autoComplete="off"
                spellCheck={false}
                autoCapitalize="off"
                autoFocus
                value={key}
                onChange={(e) => setKey(e.target.value)}
                aria-invalid={error ? true : undefined}
                aria-describedby={error ? `${errorId} ${hintId}` : hintId}
                readOnly={checking}
              />
              <button
                type="button"
                className="button"
                aria-pressed={show}
                onClick={() => setShow((s) => !s)}
              >
                {show ? "Hide" : "Show"}
                <span className="visually-hidden"> API key</span>
              </button>
            </div>
            <p id={hintId} className="hint">
              The key is kept in this browser tab only and is forgotten when you close it.
            </p>
            {error ? (
              <p id={errorId} className="field-error" role="alert">
                {error}
              </p>
            ) : null}
          </div>
          <button type="submit" className="button button-primary button-block" disabled={checking}>
            {checking ? "Checking key…" : "Sign in"}
          </button>
        </form>
      </main>
    </div>
  );
}
