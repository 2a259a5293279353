import { useEffect, useRef } from "react";
import {
  getFileReport,
  listFiles,
  type FileObject,
  type FileReport,
  type FileReportBody,
} from "../api";
import { StatusBadge } from "../components/StatusBadge";
import { Empty, ErrorMessage, Loading } from "../components/States";
import { UploadForm } from "../components/UploadForm";
import { useApi } from "../hooks/useApi";
import { usePageTitle } from "../hooks/usePageTitle";
import { formatBytes, formatNumber, formatTimestamp, isoTimestamp } from "../lib/format";
import { Link } from "../router";

const POLL_MS = 2000;
const MAX_ERRORS_SHOWN = 500;

export function DatasetsPage({ fileId }: { fileId: string | null }) {
  usePageTitle("Datasets");
  const files = useApi((signal) => listFiles(signal), [], {
    // Keep refreshing while a file is still being validated.
    poll: (list) => (list.data.some((f) => f.status === "uploaded") ? POLL_MS : null),
  });
  const list = files.data?.data ?? [];
  const selected = fileId ? list.find((f) => f.id === fileId) : undefined;

  return (
    <div className="page">
      <h1 tabIndex={-1}>Datasets</h1>
      <p className="lede">Upload training data, then check its validation report.</p>

      <section className="card" aria-labelledby="upload-heading">
        <h2 id="upload-heading">Upload a training file</h2>
        <UploadForm onUploaded={() => files.reload()} />
      </section>

      <div className="split">
        <section className="card" aria-labelledby="files-heading">
          <h2 id="files-heading">Your files</h2>
          {files.error && files.data ? (
            <ErrorMessage error={files.error} title="Could not refresh files." onRetry={files.reload} />
          ) : null}
          {files.data === undefined ? (
            files.error ? (
              <ErrorMessage error={files.error} title="Could not load files." onRetry={files.reload} />
            ) : (
              <Loading label="Loading files…" />
            )
          ) : list.length === 0 ? (
            <Empty title="No files yet.">
              <p>Upload a training file above to get started.</p>
            </Empty>
          ) : (
            <ul className="item-list">
              {list.map((f) => (
                <FileItem key={f.id} file={f} current={f.id === fileId} />
              ))}
            </ul>
          )}
        </section>

        <section className="card report-panel" aria-labelledby="report-heading">
          {fileId ? (
            <FileReportPanel fileId={fileId} file={selected} filesLoaded={files.data !== undefined} />
          ) : (
            <>
              <h2 id="report-heading" tabIndex={-1}>
                Validation report
              </h2>
              <Empty title="No file selected.">
                <p>Choose a file in the list to see its validation report.</p>
              </Empty>
            </>
          )}
        </section>
      </div>
    </div>
  );
}

function FileItem({ file, current }: { file: FileObject; current: boolean }) {
  return (
    <li className={`item${current ? " item-current" : ""}`}>
      <Link
        to={`/datasets/${encodeURIComponent(file.id)}`}
        className="item-link"
        aria-current={current ? "true" : undefined}
      >
        <span className="item-title">{file.filename}</span>
        <span className="item-meta">
          {formatBytes(file.bytes)} ·{" "}
          <time dateTime={isoTimestamp(file.created_at)}>{formatTimestamp(file.created_at)}</time>
        </span>
      </Link>
      <StatusBadge status={file.status} />
    </li>
  );
}

function FileReportPanel({
  fileId,
  file,
  filesLoaded,
}: {
  fileId: string;
  file: FileObject | undefined;
  filesLoaded: boolean;
}) {
  const headingRef = useRef<HTMLHeadingElement>(null);
  const report = useApi((signal) => getFileReport(fileId, signal), [fileId], {
    poll: (r) => (r.status === "uploaded" ? POLL_MS : null),
  });

  // Bring the report into view and focus when a file is chosen.
  useEffect(() => {
    const h = headingRef.current;
    if (!h || !document.activeElement?.closest(".item-list")) return;
    h.focus();
  }, [fileId]);

  const name = file?.filename ?? fileId;

  return (
    <>
      <h2 id="report-heading" ref={headingRef} tabIndex={-1}>
        Report: <span className="break">{name}</span>
      </h2>
      {file ? (
        <dl className="facts">
          <div>
            <dt>Status</dt>
            <dd>
              <StatusBadge status={file.status} />
            </dd>
          </div>
          <div>
            <dt>Size</dt>
            <dd>{formatBytes(file.bytes)}</dd>
          </div>
          <div>
            <dt>Uploaded</dt>
            <dd>{formatTimestamp(file.created_at)}</dd>
          </div>
          <div>
            <dt>File ID</dt>
            <dd className="mono break">{file.id}</dd>
          </div>
        </dl>
      ) : filesLoaded ? null : (
        <Loading label="Loading file…" />
      )}
      {file?.status_details ? <p className="status-details">{file.status_details}</p> : null}

      {report.data === undefined ? (
        report.error ? (
          <ErrorMessage error={report.error} title="Could not load the report." onRetry={report.reload} />
        ) : (
          <Loading label="Loading report…" />
        )
      ) : (
        <ReportBody report={report.data} />
      )}

      {file?.status === "processed" || report.data?.status === "processed" ? (
        <p>
          <Link className="button" to={`/fine-tunes?training_file=${encodeURIComponent(fileId)}`}>
            Fine-tune with this file
          </Link>
        </p>
      ) : null}
    </>
  );
}

/** Lets long snake_case codes wrap after underscores on narrow screens. */
function BreakableCode({ text }: { text: string }) {
  const parts = String(text ?? "").split("_");
  return (
    <>
      {parts.map((part, i) => (
        <span key={i}>
          {part}
          {i < parts.length - 1 ? (
            <>
              _<wbr />
            </>
          ) : null}
        </span>
      ))}
    </>
  );
}

const KNOWN_KEYS = new Set(["format", "rows", "errors", "error_count"]);

function humanize(key: string): string {
  const s = key.replace(/_/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function ReportBody({ report }: { report: FileReport }) {
  if (report.status === "uploaded") {
    return <Loading label="Validating the file… the report appears here when it is done." />;
  }
  const body: FileReportBody | null = report.report;
  if (!body) {
    return <Empty title="No report for this file." />;
  }
  const errors = body.errors ?? [];
  const errorCount = body.error_count ?? errors.length;
  const extras = Object.entries(body).filter(
    ([k, v]) =>
      !KNOWN_KEYS.has(k) && (typeof v === "string" || typeof v === "number" || typeof v === "boolean"),
  );

  return (
    <div className="report">
      <dl className="facts">
        <div>
          <dt>Format</dt>
          <dd>{body.format ?? "Unknown"}</dd>
        </div>
        <div>
          <dt>Rows</dt>
          <dd>{formatNumber(body.rows ?? null)}</dd>
        </div>
        <div>
          <dt>Errors</dt>
          <dd>{formatNumber(errorCount)}</dd>
        </div>
        {extras.map(([k, v]) => (
          <div key={k}>
            <dt>{humanize(k)}</dt>
            <dd>{typeof v === "number" ? formatNumber(v, Number.isInteger(v) ? 0 : 2) : String(v)}</dd>
          </div>
        ))}
      </dl>

      {errors.length === 0 ? (
        errorCount > 0 ? (
          <p>{formatNumber(errorCount)} problems were found, but no details were reported.</p>
        ) : (
          <p className="state state-success">No problems found.</p>
        )
      ) : (
        <>
          <h3>Errors by line</h3>
          <div className="table-scroll" tabIndex={0} role="region" aria-label="Errors by line">
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Line</th>
                  <th scope="col">Code</th>
                  <th scope="col">Message</th>
                </tr>
              </thead>
              <tbody>
                {errors.slice(0, MAX_ERRORS_SHOWN).map((e, i) => (
                  <tr key={`${e.line}-${e.code}-${i}`}>
                    <td className="num">{e.line ?? "—"}</td>
                    <td className="mono">
                      <BreakableCode text={e.code} />
                    </td>
                    <td>{e.message}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {errorCount > Math.min(errors.length, MAX_ERRORS_SHOWN) ? (
            <p className="hint">
              Showing {formatNumber(Math.min(errors.length, MAX_ERRORS_SHOWN))} of{" "}
              {formatNumber(errorCount)} errors.
            </p>
          ) : null}
        </>
      )}
    </div>
  );
}
