import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import {
  errorMessage,
  getDecisionReport,
  getFileContent,
  getJob,
  listAdapters,
  listAliases,
  rollbackAlias,
  type Adapter,
  type Alias,
} from "../api";
import { DecisionReport } from "../components/DecisionReport";
import { AdapterActions, AliasHistory, PromoteForm } from "../components/Registry";
import { StatusBadge } from "../components/StatusBadge";
import { Empty, ErrorMessage, Loading } from "../components/States";
import { usePageTitle } from "../hooks/usePageTitle";
import { saveBlob } from "../lib/download";
import { formatLoss, formatNumber, formatTimestamp } from "../lib/format";
import { Link } from "../router";

export function ModelsPage({ adapterId }: { adapterId: string | null }) {
  usePageTitle("Models");
  const adapters = useQuery({ queryKey: ["adapters"], queryFn: ({ signal }) => listAdapters(signal) });
  const aliases = useQuery({ queryKey: ["aliases"], queryFn: ({ signal }) => listAliases(signal) });
  const list = adapters.data?.data ?? [];
  const selected = list.find((a) => a.id === adapterId) ?? list[0];

  return (
    <div className="page">
      <h1 tabIndex={-1}>Models</h1>
      <p className="lede">Your adapter versions, where they came from, and the aliases that serve them.</p>

      <section className="card" aria-labelledby="aliases-heading">
        <h2 id="aliases-heading">Aliases</h2>
        {aliases.isPending ? (
          <Loading label="Loading aliases…" />
        ) : aliases.isError ? (
          <ErrorMessage error={aliases.error} title="Could not load aliases." onRetry={() => void aliases.refetch()} />
        ) : (
          <AliasTable aliases={aliases.data.data} />
        )}
      </section>

      <div className="split">
        <section className="card" aria-labelledby="versions-heading">
          <h2 id="versions-heading">Adapter versions</h2>
          {adapters.isPending ? (
            <Loading label="Loading adapters…" />
          ) : adapters.isError ? (
            <ErrorMessage error={adapters.error} title="Could not load adapters." onRetry={() => void adapters.refetch()} />
          ) : list.length === 0 ? (
            <Empty title="No adapters yet.">
              <p>
                A fine-tune that succeeds makes one. <Link to="/fine-tunes">Start a fine-tune.</Link>
              </p>
            </Empty>
          ) : (
            <ul className="item-list">
              {list.map((a) => (
                <li key={a.id} className={`item${a.id === selected?.id ? " item-current" : ""}`}>
                  <Link
                    to={`/models/${encodeURIComponent(a.id)}`}
                    className="item-link"
                    aria-current={a.id === selected?.id ? "true" : undefined}
                  >
                    <span className="item-title break">{a.name}</span>
                    <span className="item-meta">{formatTimestamp(a.created_at)}</span>
                  </Link>
                  <StatusBadge status={a.status} />
                </li>
              ))}
            </ul>
          )}
        </section>
        <section className="card" aria-labelledby="adapter-heading">
          {selected ? (
            <AdapterDetail adapter={selected} aliases={aliases.data?.data ?? []} />
          ) : (
            <>
              <h2 id="adapter-heading">Adapter</h2>
              <Empty title="No adapter selected." />
            </>
          )}
        </section>
      </div>
    </div>
  );
}

function AliasTable({ aliases }: { aliases: Alias[] }) {
  const client = useQueryClient();
  const [open, setOpen] = useState<string | null>(null);
  const rollback = useMutation({
    mutationFn: (name: string) => rollbackAlias(name),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: ["aliases"] });
      void client.invalidateQueries({ queryKey: ["alias-history"] });
    },
  });
  if (aliases.length === 0) {
    return (
      <Empty title="No aliases yet.">
        <p>Promote an adapter version below to give it a stable name that clients call.</p>
      </Empty>
    );
  }
  return (
    <>
      <div className="table-scroll" tabIndex={0} role="region" aria-label="Aliases">
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Alias</th>
              <th scope="col">Serves</th>
              <th scope="col">Previous</th>
              <th scope="col">Version</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {aliases.map((a) => (
              <Fragment key={a.id}>
                <tr>
                  <td className="mono">{a.name}</td>
                  <td className="mono break" data-testid={`alias-target-${a.name}`}>
                    {a.target.model}
                  </td>
                  <td className="mono break">{a.previous?.model ?? "—"}</td>
                  <td className="num">{a.version}</td>
                  <td className="row-actions">
                    <button
                      type="button"
                      className="button button-small"
                      aria-expanded={open === a.name}
                      onClick={() => setOpen(open === a.name ? null : a.name)}
                    >
                      History<span className="visually-hidden"> of {a.name}</span>
                    </button>
                    {a.previous ? (
                      <button
                        type="button"
                        className="button button-small"
                        disabled={rollback.isPending}
                        onClick={() => rollback.mutate(a.name)}
                      >
                        Roll back<span className="visually-hidden"> {a.name}</span>
                      </button>
                    ) : null}
                  </td>
                </tr>
                {open === a.name ? (
                  <tr>
                    <td colSpan={5}>
                      <AliasHistory name={a.name} />
                    </td>
                  </tr>
                ) : null}
              </Fragment>
            ))}
          </tbody>
        </table>
      </div>
      {rollback.isError ? <ErrorMessage error={rollback.error} title="Could not roll back." /> : null}
    </>
  );
}

function AdapterDetail({ adapter, aliases }: { adapter: Adapter; aliases: Alias[] }) {
  const m = adapter.manifest as Record<string, unknown>;
  const job = useQuery({
    queryKey: ["job", adapter.fine_tuning_job_id],
    queryFn: ({ signal }) => getJob(adapter.fine_tuning_job_id as string, signal),
    enabled: Boolean(adapter.fine_tuning_job_id),
  });
  const report = useQuery({
    queryKey: ["decision-report", adapter.fine_tuning_job_id],
    queryFn: ({ signal }) => getDecisionReport(adapter.fine_tuning_job_id as string, signal),
    enabled: Boolean(adapter.fine_tuning_job_id),
  });
  const [downloadError, setDownloadError] = useState<string | null>(null);
  const download = async (what: "manifest" | "results") => {
    setDownloadError(null);
    try {
      if (what === "manifest") {
        saveBlob(new Blob([JSON.stringify(adapter.manifest, null, 2)], { type: "application/json" }), `${adapter.id}-manifest.json`);
      } else if (job.data?.result_files[0]) {
        saveBlob(await getFileContent(job.data.result_files[0]), `${adapter.id}-results.csv`);
      }
    } catch (err) {
      setDownloadError(errorMessage(err));
    }
  };
  const hp = (m.hyperparameters ?? {}) as Record<string, unknown>;
  const facts: [string, string][] = [
    ["Adapter ID", adapter.id],
    ["Base model", adapter.base_model],
    ["Created", formatTimestamp(adapter.created_at)],
    ["Seed", String(m.seed ?? "—")],
    ["Trained tokens", formatNumber(typeof m.trained_tokens === "number" ? m.trained_tokens : null)],
    ["Final train loss", typeof m.final_train_loss === "number" ? formatLoss(m.final_train_loss) : "—"],
    ["LoRA rank / alpha", `${hp.lora_r ?? "—"} / ${hp.lora_alpha ?? "—"}`],
    ["Epochs", String(hp.n_epochs ?? "—")],
    ["Dataset sha256", String(m.dataset_sha256 ?? "—")],
    ["Base weights sha256", String(m.base_weights_sha256 ?? "—")],
  ];
  return (
    <>
      <h2 id="adapter-heading" className="break">
        {adapter.name}
      </h2>
      <h3>Lineage</h3>
      <ol className="lineage" aria-label="Lineage">
        <li>
          Base model <span className="mono">{adapter.base_model}</span>
        </li>
        <li>
          Training file{" "}
          {job.data ? (
            <Link className="mono break" to={`/datasets/${encodeURIComponent(job.data.training_file)}`}>
              {job.data.training_file}
            </Link>
          ) : (
            "—"
          )}
        </li>
        <li>
          Fine-tune{" "}
          {adapter.fine_tuning_job_id ? (
            <Link className="mono break" to={`/fine-tunes/${encodeURIComponent(adapter.fine_tuning_job_id)}`}>
              {adapter.fine_tuning_job_id}
            </Link>
          ) : (
            "—"
          )}
        </li>
        <li>
          This version <span className="mono break">{adapter.name}</span>
        </li>
      </ol>
      <h3>Manifest</h3>
      <dl className="facts facts-wide">
        {facts.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd className="mono break">{v}</dd>
          </div>
        ))}
      </dl>
      <div className="form-actions">
        <button type="button" className="button" onClick={() => void download("manifest")}>
          Download manifest
        </button>
        {job.data?.result_files[0] ? (
          <button type="button" className="button" onClick={() => void download("results")}>
            Download training metrics (CSV)
          </button>
        ) : null}
        <Link className="button" to={`/playground?model=${encodeURIComponent(adapter.name)}`}>
          Try in the Playground
        </Link>
      </div>
      {downloadError ? (
        <p className="state state-error" role="alert">
          {downloadError}
        </p>
      ) : null}
      {report.data?.status === "succeeded" ? (
        <section className="decision-report" aria-labelledby="adapter-report-heading">
          <h3 id="adapter-report-heading">Decision report</h3>
          <DecisionReport report={report.data} />
        </section>
      ) : null}
      <PromoteForm adapter={adapter} aliases={aliases} />
      <AdapterActions adapter={adapter} />
    </>
  );
}
