// The registry side of the Models page: gated promotion, alias history, the adapter's zip,
// exports and deletion.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import {
  ApiError,
  createExport,
  deleteAdapter,
  errorMessage,
  getAdapterZip,
  getAliasHistory,
  getExport,
  getExportZip,
  promoteAlias,
  promoteGated,
  type Adapter,
  type AdapterExport,
  type Alias,
} from "../api";
import { saveBlob } from "../lib/download";
import { formatBytes, formatTimestamp } from "../lib/format";
import { StatusBadge } from "./StatusBadge";
import { Empty, ErrorMessage, Loading } from "./States";

const GATE_CODES = ["promotion_blocked", "evaluation_required"];

export interface GateRegression {
  group: string;
  metric: string;
  current: number;
  candidate: number;
}

/**
 * The worst regression named in a `promotion_blocked` message ("worst: regression exact_match
 * 0.900 -> 0.500"): the 409 body carries only OpenAI's error fields.
 */
export function parseWorstRegression(message: string): GateRegression | null {
  const m = /worst: (\S+) (\S+) (-?\d+(?:\.\d+)?) -> (-?\d+(?:\.\d+)?)/.exec(message);
  if (!m) return null;
  const [, group = "", metric = "", current, candidate] = m;
  return { group, metric, current: Number(current), candidate: Number(candidate) };
}

function pts(delta: number): string {
  const v = delta * 100;
  return `${v > 0 ? "+" : v < 0 ? "−" : "±"}${Math.abs(v).toFixed(1)} pts`;
}

export function PromoteForm({ adapter, aliases }: { adapter: Adapter; aliases: Alias[] }) {
  const id = useId();
  const client = useQueryClient();
  const [name, setName] = useState("");
  const [reason, setReason] = useState("");
  const exists = (alias: string) => aliases.some((a) => a.name === alias);
  const promote = useMutation({
    mutationFn: async ({ alias, force }: { alias: string; force?: string }) => {
      if (!exists(alias)) return promoteAlias(alias, adapter.id, false);
      const res = await promoteGated(alias, adapter.id, force ? { reason: force } : undefined);
      return res.alias;
    },
    onSuccess: () => {
      setName("");
      setReason("");
      void client.invalidateQueries({ queryKey: ["aliases"] });
      void client.invalidateQueries({ queryKey: ["alias-history"] });
    },
  });
  const gateError =
    promote.error instanceof ApiError && GATE_CODES.includes(promote.error.code ?? "") ? promote.error : null;
  const worst = gateError ? parseWorstRegression(gateError.message) : null;
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (name.trim()) promote.mutate({ alias: name.trim() });
  };
  const onForce = (e: FormEvent) => {
    e.preventDefault();
    if (name.trim() && reason.trim()) promote.mutate({ alias: name.trim(), force: reason.trim() });
  };
  return (
    <div className="promote">
      <form className="form" onSubmit={onSubmit} aria-labelledby={`${id}-heading`}>
        <h3 id={`${id}-heading`}>Promote to an alias</h3>
        <div className="field">
          <label htmlFor={`${id}-alias`}>Alias name</label>
          <input
            id={`${id}-alias`}
            type="text"
            list={`${id}-aliases`}
            value={name}
            onChange={(e) => setName(e.target.value)}
            autoComplete="off"
            spellCheck={false}
            aria-describedby={`${id}-hint`}
            aria-invalid={promote.isError ? true : undefined}
          />
          <datalist id={`${id}-aliases`}>
            {aliases.map((a) => (
              <option key={a.id} value={a.name} />
            ))}
          </datalist>
          <p className="hint" id={`${id}-hint`}>
            A new name creates the alias. An existing one is repointed here only if this version does not regress
            its regression suite or safety probes (roll back restores it).
          </p>
        </div>
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={promote.isPending || !name.trim()}>
            {promote.isPending ? "Promoting…" : "Promote"}
          </button>
        </div>
      </form>
      <div aria-live="polite">
        {promote.isSuccess ? (
          <p className="state state-success">
            <span className="mono">{promote.data.name}</span> now serves {promote.data.target.model}.
          </p>
        ) : null}
      </div>
      {gateError ? (
        <div className="state state-error" role="alert">
          <p>
            <strong>{gateError.code === "promotion_blocked" ? "Promotion blocked." : "Evaluation required."} </strong>
            {gateError.message}
          </p>
          {worst ? (
            <div className="table-scroll" tabIndex={0} role="region" aria-label="Regressed metrics">
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">Suite</th>
                    <th scope="col">Metric</th>
                    <th scope="col">Current</th>
                    <th scope="col">This version</th>
                    <th scope="col">Change</th>
                  </tr>
                </thead>
                <tbody>
                  <tr>
                    <td>{worst.group}</td>
                    <td className="mono">{worst.metric}</td>
                    <td className="num">{worst.current.toFixed(3)}</td>
                    <td className="num">{worst.candidate.toFixed(3)}</td>
                    <td className="num" data-testid="regression-delta">
                      {pts(worst.candidate - worst.current)}
                    </td>
                  </tr>
                </tbody>
              </table>
            </div>
          ) : null}
        </div>
      ) : promote.isError ? (
        <p className="state state-error" role="alert">
          {errorMessage(promote.error)}
        </p>
      ) : null}
      {gateError ? (
        <form className="form" onSubmit={onForce} aria-labelledby={`${id}-force`}>
          <h4 id={`${id}-force`}>Promote anyway</h4>
          <div className="field">
            <label htmlFor={`${id}-reason`}>Reason (kept in the audit log)</label>
            <textarea
              id={`${id}-reason`}
              value={reason}
              required
              rows={2}
              onChange={(e) => setReason(e.target.value)}
            />
          </div>
          <div className="form-actions">
            <button type="submit" className="button" disabled={promote.isPending || !reason.trim()}>
              Promote anyway
            </button>
          </div>
        </form>
      ) : null}
    </div>
  );
}

const ACTION_LABELS: Record<string, string> = {
  create: "Created",
  repoint: "Repointed",
  promote: "Promoted",
  promote_forced: "Promoted anyway",
  rollback: "Rolled back",
};

export function AliasHistory({ name }: { name: string }) {
  const history = useQuery({
    queryKey: ["alias-history", name],
    queryFn: ({ signal }) => getAliasHistory(name, signal),
  });
  if (history.isPending) return <Loading label="Loading history…" />;
  if (history.isError) {
    return <ErrorMessage error={history.error} title="Could not load the history." onRetry={() => void history.refetch()} />;
  }
  if (history.data.data.length === 0) return <Empty title="No history yet." />;
  return (
    <ol className="item-list" aria-label={`History of ${name}`}>
      {history.data.data.map((e) => (
        <li key={e.id} className="item">
          <span className="item-title">
            v{e.version} · {ACTION_LABELS[e.action] ?? e.action}{" "}
            <span className="mono break">{e.adapter_id ?? e.base_model ?? "—"}</span>
          </span>
          <span className="item-meta">
            {formatTimestamp(e.created_at)}
            {e.reason ? ` — ${e.reason}` : ""}
          </span>
        </li>
      ))}
    </ol>
  );
}

function isExportDone(e: AdapterExport | undefined): boolean {
  return e?.status === "succeeded" || e?.status === "failed";
}

export function AdapterActions({ adapter, onDeleted }: { adapter: Adapter; onDeleted?: () => void }) {
  const id = useId();
  const client = useQueryClient();
  const [kind, setKind] = useState<"merged" | "adapter">("merged");
  const [exportId, setExportId] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [downloadError, setDownloadError] = useState<string | null>(null);
  const request = useMutation({
    mutationFn: () => createExport(adapter.id, kind),
    onSuccess: (e) => setExportId(e.id),
  });
  const exp = useQuery({
    queryKey: ["export", adapter.id, exportId],
    queryFn: ({ signal }) => getExport(adapter.id, exportId as string, signal),
    enabled: Boolean(exportId),
    refetchInterval: (q) => (isExportDone(q.state.data) ? false : 2000),
  });
  const remove = useMutation({
    mutationFn: () => deleteAdapter(adapter.id),
    onSuccess: () => {
      setConfirming(false);
      void client.invalidateQueries({ queryKey: ["adapters"] });
      onDeleted?.();
    },
  });
  const save = async (get: () => Promise<Blob>, filename: string) => {
    setDownloadError(null);
    try {
      saveBlob(await get(), filename);
    } catch (err) {
      setDownloadError(errorMessage(err));
    }
  };
  const current = exp.data ?? request.data;
  return (
    <section aria-labelledby={`${id}-heading`}>
      <h3 id={`${id}-heading`}>Download and export</h3>
      <div className="form-actions">
        <button type="button" className="button" onClick={() => void save(() => getAdapterZip(adapter.id), `${adapter.id}.zip`)}>
          Download adapter (zip)
        </button>
      </div>
      <div className="field">
        <label htmlFor={`${id}-kind`}>Export</label>
        <select id={`${id}-kind`} value={kind} onChange={(e) => setKind(e.target.value as "merged" | "adapter")}>
          <option value="merged">Merged into the base weights</option>
          <option value="adapter">Adapter only</option>
        </select>
      </div>
      <div className="form-actions">
        <button type="button" className="button" disabled={request.isPending} onClick={() => request.mutate()}>
          {request.isPending ? "Requesting…" : "Request export"}
        </button>
      </div>
      {request.isError ? <ErrorMessage error={request.error} title="Could not request the export." /> : null}
      <div aria-live="polite">
        {current ? (
          <p className="state" data-testid="export-status">
            Export <span className="mono">{current.id}</span> ({current.kind}): <StatusBadge status={current.status} />
            {current.bytes ? ` ${formatBytes(current.bytes)}` : ""}
            {current.status === "failed" && current.error ? ` — ${String(current.error.message ?? "")}` : ""}
          </p>
        ) : null}
      </div>
      {current?.status === "succeeded" ? (
        <button
          type="button"
          className="button"
          onClick={() => void save(() => getExportZip(adapter.id, current.id), `${adapter.id}-${current.kind}.zip`)}
        >
          Download export
        </button>
      ) : null}
      {exp.isError ? <ErrorMessage error={exp.error} title="Could not follow the export." /> : null}
      {downloadError ? (
        <p className="state state-error" role="alert">
          {downloadError}
        </p>
      ) : null}
      <h3>Delete</h3>
      {confirming ? (
        <div className="form-actions" role="group" aria-label="Confirm deletion">
          <span>Delete {adapter.name} for good?</span>
          <button type="button" className="button button-danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
            Yes, delete
          </button>
          <button type="button" className="button" onClick={() => setConfirming(false)}>
            Keep it
          </button>
        </div>
      ) : (
        <button type="button" className="button" onClick={() => setConfirming(true)}>
          Delete adapter
        </button>
      )}
      {remove.isError ? <ErrorMessage error={remove.error} title="Could not delete." /> : null}
    </section>
  );
}
