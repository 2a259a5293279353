// Upload a training or eval file: a file input inside a drag-and-drop zone (react-dropzone), with a
// real progress bar; big files go up in parts through the Uploads API.
import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { useDropzone } from "react-dropzone";
import {
  errorMessage,
  isAbortError,
  uploadFile,
  type FileObject,
  type UploadHandle,
} from "../api";
import { formatBytes } from "../lib/format";
import { ProgressBar } from "./ProgressBar";

type Phase =
  | { kind: "idle" }
  | { kind: "uploading"; loaded: number; total: number }
  | { kind: "done"; file: FileObject }
  | { kind: "error"; message: string };

export function UploadForm({ onUploaded }: { onUploaded?: (file: FileObject) => void }) {
  const inputId = useId();
  const hintId = useId();
  const purposeId = useId();
  const [purpose, setPurpose] = useState<"fine-tune" | "evals">("fine-tune");
  const inputRef = useRef<HTMLInputElement>(null);
  const handleRef = useRef<UploadHandle | null>(null);
  const [file, setFile] = useState<File | null>(null);
  const [phase, setPhase] = useState<Phase>({ kind: "idle" });

  // Abandon an upload in flight if the page goes away.
  useEffect(() => () => handleRef.current?.abort(), []);

  const uploading = phase.kind === "uploading";

  const choose = (f: File | null) => {
    setFile(f);
    setPhase({ kind: "idle" });
  };

  // The zone takes drops only; the labelled file input inside it stays the keyboard path.
  const { getRootProps, isDragActive } = useDropzone({
    onDrop: (accepted) => {
      if (accepted[0]) choose(accepted[0]);
    },
    multiple: false,
    noClick: true,
    noKeyboard: true,
    disabled: uploading,
  });

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) {
      setPhase({ kind: "error", message: "Choose a file to upload first." });
      inputRef.current?.focus();
      return;
    }
    setPhase({ kind: "uploading", loaded: 0, total: file.size });
    const handle = uploadFile(
      file,
      ({ loaded, total }) => setPhase({ kind: "uploading", loaded, total }),
      { purpose },
    );
    handleRef.current = handle;
    try {
      const uploaded = await handle.promise;
      setPhase({ kind: "done", file: uploaded });
      setFile(null);
      if (inputRef.current) inputRef.current.value = "";
      onUploaded?.(uploaded);
    } catch (err) {
      setPhase(
        isAbortError(err)
          ? { kind: "error", message: "Upload cancelled." }
          : { kind: "error", message: errorMessage(err) },
      );
    } finally {
      handleRef.current = null;
    }
  };

  let progress = null;
  if (phase.kind === "uploading") {
    const pct = phase.total > 0 ? Math.min(100, (phase.loaded / phase.total) * 100) : 0;
    const finishing = phase.total > 0 && phase.loaded >= phase.total;
    const text = finishing
      ? "Upload complete, saving the file…"
      : `${Math.round(pct)}% — ${formatBytes(phase.loaded)} of ${formatBytes(phase.total)}`;
    progress = (
      <div className="upload-progress">
        <ProgressBar value={pct} label="Upload progress" valueText={text} />
        <p className="upload-progress-text" aria-hidden="true">
          {text}
        </p>
      </div>
    );
  }

  return (
    <form className="upload-form" onSubmit={onSubmit} aria-busy={uploading}>
      <div className="field">
        <label htmlFor={purposeId}>Purpose</label>
        <select
          id={purposeId}
          value={purpose}
          disabled={uploading}
          onChange={(e) => setPurpose(e.target.value as "fine-tune" | "evals")}
        >
          <option value="fine-tune">Fine-tune (training data)</option>
          <option value="evals">Evals (eval rows: messages, expected, tags, checks)</option>
        </select>
      </div>
      <div
        {...getRootProps({ className: `dropzone${isDragActive ? " dropzone-active" : ""}` })}
        tabIndex={undefined}
        role={undefined}
      >
        <label htmlFor={inputId} className="dropzone-label">
          {purpose === "evals" ? "Eval file" : "Training file"}
        </label>
        <p id={hintId} className="hint">
          Drop a file here or choose one. Usually JSON Lines (.jsonl), one example per line; big files are sent in parts.
        </p>
        <input
          ref={inputRef}
          id={inputId}
          type="file"
          aria-describedby={hintId}
          disabled={uploading}
          onChange={(e) => choose(e.target.files?.[0] ?? null)}
        />
        {file ? (
          <p className="dropzone-file">
            Selected: <strong>{file.name}</strong> ({formatBytes(file.size)})
          </p>
        ) : null}
      </div>

      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={uploading}>
          {uploading ? "Uploading…" : "Upload"}
        </button>
        {uploading ? (
          <button type="button" className="button" onClick={() => handleRef.current?.abort()}>
            Cancel upload
          </button>
        ) : null}
      </div>

      {progress}

      <div aria-live="polite" className="upload-result">
        {phase.kind === "done" ? (
          <p className="state state-success">
            Uploaded <strong>{phase.file.filename}</strong>. Validation has started; its report
            appears in the list below.
          </p>
        ) : null}
      </div>
      {phase.kind === "error" ? (
        <p className="state state-error" role="alert">
          {phase.message}
        </p>
      ) : null}
    </form>
  );
}
