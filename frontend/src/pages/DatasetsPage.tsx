import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import { getFileReport, listFiles, type FileObject } from "../api";
import { DatasetReport } from "../components/DatasetReport";
import { StatusBadge } from "../components/StatusBadge";
import { Empty, ErrorMessage, Loading } from "../components/States";
import { UploadForm } from "../components/UploadForm";
import { usePageTitle } from "../hooks/usePageTitle";
import { formatBytes, formatTimestamp, isoTimestamp } from "../lib/format";
import { Link } from "../router";

const POLL_MS = 2000;

export function DatasetsPage({ fileId }: { fileId: string | null }) {
  usePageTitle("Datasets");
  const files = useQuery({
    queryKey: ["files"],
    queryFn: ({ signal }) => listFiles(signal),
    // Keep refreshing while a file is still being validated.
    refetchInterval: (q) => (q.state.data?.data.some((f) => f.status === "uploaded") ? POLL_MS : false),
  });
  const list = files.data?.data ?? [];
  const selected = fileId ? list.find((f) => f.id === fileId) : undefined;

  return (
    <div className="page">
      <h1 tabIndex={-1}>Datasets</h1>
      <p className="lede">Upload training data or eval files, then check the quality report.</p>

      <section className="card" aria-labelledby="upload-heading">
        <h2 id="upload-heading">Upload a file</h2>
        <UploadForm onUploaded={() => void files.refetch()} />
      </section>

      <div className="split">
        <section className="card" aria-labelledby="files-heading">
          <h2 id="files-heading">Your files</h2>
          {files.error && files.data ? (
            <ErrorMessage error={files.error} title="Could not refresh files." onRetry={() => void files.refetch()} />
          ) : null}
          {files.data === undefined ? (
            files.error ? (
              <ErrorMessage error={files.error} title="Could not load files." onRetry={() => void files.refetch()} />
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
                Quality report
              </h2>
              <Empty title="No file selected.">
                <p>Choose a file in the list to see its quality report.</p>
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
  const report = useQuery({
    queryKey: ["file-report", fileId],
    queryFn: ({ signal }) => getFileReport(fileId, signal),
    refetchInterval: (q) => (q.state.data?.status === "uploaded" ? POLL_MS : false),
  });
  const queryClient = useQueryClient();
  const reportStatus = report.data?.status;
  // The file's own status changes with its report: refresh the list at once.
  useEffect(() => {
    if (reportStatus && reportStatus !== "uploaded" && file?.status === "uploaded") {
      void queryClient.invalidateQueries({ queryKey: ["files"] });
    }
  }, [reportStatus, file?.status, queryClient]);

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
          <ErrorMessage
            error={report.error}
            title="Could not load the report."
            onRetry={() => void report.refetch()}
          />
        ) : (
          <Loading label="Loading report…" />
        )
      ) : (
        <DatasetReport report={report.data} />
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

