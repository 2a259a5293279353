import { useQuery } from "@tanstack/react-query";
import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import {
  ApiError,
  createJob,
  errorMessage,
  getFileReport,
  isFineTuned,
  isTerminalStatus,
  listFiles,
  listJobs,
  listModels,
  type FineTuningJob,
  type Hyperparameters,
} from "../api";
import { StatusBadge } from "../components/StatusBadge";
import { Empty, ErrorMessage, Loading } from "../components/States";
import { usePageTitle } from "../hooks/usePageTitle";
import {
  formatDuration,
  formatNumber,
  formatTimestamp,
  isoTimestamp,
  PARALLELISM_LABELS,
  type Parallelism,
} from "../lib/format";
import { Link, useRouter, useSearchParam } from "../router";

const LIST_POLL_MS = 5000;
const ADVANCED_FIELDS = [
  "n_epochs",
  "lora_r",
  "lora_alpha",
  "batch_size",
  "learning_rate_multiplier",
  "max_seq_length",
  "n_gpus",
  "parallelism",
];
// The server's defaults (docs/api.md, "Hyperparameters"), shown as placeholders.
export const DEFAULT_EPOCHS = 3;
const BASE_LEARNING_RATE = 2e-4;

export function FineTunesPage() {
  usePageTitle("Fine-tunes");
  const jobs = useQuery({
    queryKey: ["jobs"],
    queryFn: ({ signal }) => listJobs(signal),
    refetchInterval: (q) =>
      q.state.data?.data.some((j) => !isTerminalStatus(j.status)) ? LIST_POLL_MS : false,
  });
  const list = jobs.data?.data ?? [];

  return (
    <div className="page">
      <h1 tabIndex={-1}>Fine-tunes</h1>
      <p className="lede">Train a LoRA adapter on one of your datasets and follow its progress.</p>
      <div className="split split-form">
        <section className="card" aria-labelledby="new-job-heading">
          <h2 id="new-job-heading">Start a fine-tune</h2>
          <NewJobForm />
        </section>

        <section className="card" aria-labelledby="jobs-heading">
          <h2 id="jobs-heading">Jobs</h2>
          {jobs.error && jobs.data ? (
            <ErrorMessage error={jobs.error} title="Could not refresh jobs." onRetry={() => void jobs.refetch()} />
          ) : null}
          {jobs.data === undefined ? (
            jobs.error ? (
              <ErrorMessage error={jobs.error} title="Could not load jobs." onRetry={() => void jobs.refetch()} />
            ) : (
              <Loading label="Loading jobs…" />
            )
          ) : list.length === 0 ? (
            <Empty title="No fine-tunes yet.">
              <p>Start one with the form. You need a validated training file first.</p>
            </Empty>
          ) : (
            <ul className="item-list">
              {list.map((job) => (
                <JobItem key={job.id} job={job} />
              ))}
            </ul>
          )}
        </section>
      </div>
    </div>
  );
}

function JobItem({ job }: { job: FineTuningJob }) {
  return (
    <li className="item">
      <Link to={`/fine-tunes/${encodeURIComponent(job.id)}`} className="item-link">
        <span className="item-title break">{job.fine_tuned_model ?? job.id}</span>
        <span className="item-meta">
          {job.model} ·{" "}
          <time dateTime={isoTimestamp(job.created_at)}>{formatTimestamp(job.created_at)}</time>
        </span>
      </Link>
      <StatusBadge status={job.status} />
    </li>
  );
}

/** Which form field an API error's `param` points at. */
function fieldForParam(param: string | null): string | null {
  if (!param) return null;
  const last = param.split(".").pop() ?? param;
  const known = ["model", "training_file", "validation_file", "suffix", ...ADVANCED_FIELDS];
  return known.includes(last) ? last : null;
}

function parseOptionalNumber(value: string): number | undefined {
  const trimmed = value.trim();
  if (!trimmed) return undefined;
  const n = Number(trimmed);
  return Number.isFinite(n) ? n : NaN;
}

function NewJobForm() {
  const { navigate } = useRouter();
  const preselectedFile = useSearchParam("training_file");
  const id = useId();
  const models = useQuery({ queryKey: ["models"], queryFn: ({ signal }) => listModels(signal) });
  const files = useQuery({ queryKey: ["files"], queryFn: ({ signal }) => listFiles(signal) });

  const [model, setModel] = useState("");
  const [trainingFile, setTrainingFile] = useState(preselectedFile ?? "");
  const [suffix, setSuffix] = useState("");
  const [epochs, setEpochs] = useState("");
  const [loraR, setLoraR] = useState("");
  const [loraAlpha, setLoraAlpha] = useState("");
  const [maxLength, setMaxLength] = useState("");
  const [validationFile, setValidationFile] = useState("");
  const [batchSize, setBatchSize] = useState("");
  const [lrMultiplier, setLrMultiplier] = useState("");
  const [nGpus, setNGpus] = useState("");
  const [parallelism, setParallelism] = useState<Parallelism>("ddp");
  const [submitting, setSubmitting] = useState(false);
  const [error, setError] = useState<{ message: string; field: string | null } | null>(null);

  const baseModels = (models.data?.data ?? []).filter((m) => !isFineTuned(m));
  const trainingFiles = (files.data?.data ?? []).filter((f) => f.purpose === "fine-tune");
  const chosenModel = model || baseModels[0]?.id || "";
  const usableFiles = trainingFiles.filter((f) => f.status === "processed");
  const chosenFile =
    trainingFile && usableFiles.some((f) => f.id === trainingFile)
      ? trainingFile
      : (usableFiles[0]?.id ?? "");

  const report = useQuery({
    queryKey: ["file-report", chosenFile],
    queryFn: ({ signal }) => getFileReport(chosenFile, signal),
    enabled: chosenFile !== "",
  });
  const epochsNumber = parseOptionalNumber(epochs) ?? DEFAULT_EPOCHS;
  const multiplier = parseOptionalNumber(lrMultiplier) ?? 1;

  const fieldId = (name: string) => `${id}-${name}`;
  const advancedRef = useRef<HTMLDetailsElement>(null);

  // Point people at the field an error is about (opening "Advanced" if needed).
  useEffect(() => {
    if (!error?.field) return;
    if (ADVANCED_FIELDS.includes(error.field) && advancedRef.current) {
      advancedRef.current.open = true;
    }
    document.getElementById(`${id}-${error.field}`)?.focus();
  }, [error, id]);
  const errorFor = (name: string) => (error?.field === name ? `${id}-error` : undefined);
  const invalid = (name: string) => (error?.field === name ? true : undefined);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    if (!chosenModel) {
      setError({ message: "Choose a base model.", field: "model" });
      return;
    }
    if (!chosenFile) {
      setError({ message: "Choose a training file.", field: "training_file" });
      return;
    }
    const hyperparameters: Hyperparameters = {};
    const numbers: [
      "n_epochs" | "lora_r" | "lora_alpha" | "batch_size" | "learning_rate_multiplier" | "max_seq_length",
      string,
      string,
    ][] = [
      ["n_epochs", epochs, "Epochs"],
      ["lora_r", loraR, "LoRA rank"],
      ["lora_alpha", loraAlpha, "LoRA alpha"],
      ["batch_size", batchSize, "Batch size"],
      ["learning_rate_multiplier", lrMultiplier, "Learning rate multiplier"],
      ["max_seq_length", maxLength, "Max length"],
    ];
    for (const [key, raw, label] of numbers) {
      const n = parseOptionalNumber(raw);
      if (n === undefined) continue;
      if (Number.isNaN(n) || n <= 0) {
        setError({ message: `${label} must be a positive number.`, field: key });
        return;
      }
      hyperparameters[key] = n;
    }
    const gpus = parseOptionalNumber(nGpus);
    if (gpus !== undefined && !(Number.isInteger(gpus) && gpus > 0)) {
      setError({ message: "GPUs must be a positive whole number.", field: "n_gpus" });
      return;
    }
    if (parallelism === "fsdp" && (gpus === undefined || gpus < 2)) {
      setError({
        message: "Sharded (FSDP) needs 2 or more GPUs: set GPUs to at least 2, or choose Data parallel (DDP).",
        field: "parallelism",
      });
      return;
    }
    if (gpus !== undefined) hyperparameters.n_gpus = gpus;
    if ((gpus !== undefined && gpus >= 2) || parallelism === "fsdp") hyperparameters.parallelism = parallelism;
    setSubmitting(true);
    try {
      const job = await createJob({
        model: chosenModel,
        training_file: chosenFile,
        ...(validationFile ? { validation_file: validationFile } : {}),
        ...(suffix.trim() ? { suffix: suffix.trim() } : {}),
        method: { type: "supervised", supervised: { hyperparameters } },
      });
      navigate(`/fine-tunes/${encodeURIComponent(job.id)}`);
    } catch (err) {
      setError({
        message: errorMessage(err),
        field: err instanceof ApiError ? fieldForParam(err.param) : null,
      });
      setSubmitting(false);
    }
  };

  if (models.data === undefined || files.data === undefined) {
    const failed = models.error ?? files.error;
    return failed ? (
      <ErrorMessage
        error={failed}
        title="Could not load models and files."
        onRetry={() => {
          void models.refetch();
          void files.refetch();
        }}
      />
    ) : (
      <Loading label="Loading models and files…" />
    );
  }

  if (baseModels.length === 0) {
    return <Empty title="No base models are available on this server." />;
  }

  return (
    <form className="form" onSubmit={onSubmit} noValidate aria-busy={submitting}>
      <div className="field">
        <label htmlFor={fieldId("model")}>Base model</label>
        <select
          id={fieldId("model")}
          value={chosenModel}
          onChange={(e) => setModel(e.target.value)}
          aria-invalid={invalid("model")}
          aria-describedby={errorFor("model")}
        >
          {baseModels.map((m) => (
            <option key={m.id} value={m.id}>
              {m.id}
            </option>
          ))}
        </select>
      </div>

      <div className="field">
        {trainingFiles.length === 0 ? (
          <>
            <span className="label">Training file</span>
            <p className="hint">
              No training files yet. <Link to="/datasets">Upload one on the Datasets page.</Link>
            </p>
          </>
        ) : (
          <>
            <label htmlFor={fieldId("training_file")}>Training file</label>
            <select
              id={fieldId("training_file")}
              value={chosenFile}
              onChange={(e) => setTrainingFile(e.target.value)}
              aria-invalid={invalid("training_file")}
              aria-describedby={[errorFor("training_file"), `${fieldId("training_file")}-hint`]
                .filter(Boolean)
                .join(" ")}
            >
              {chosenFile === "" ? <option value="">Choose a file</option> : null}
              {trainingFiles.map((f) => (
                <option key={f.id} value={f.id} disabled={f.status !== "processed"}>
                  {f.filename}
                  {f.status === "uploaded" ? " (still validating)" : ""}
                  {f.status === "error" ? " (invalid)" : ""}
                </option>
              ))}
            </select>
            <p className="hint" id={`${fieldId("training_file")}-hint`}>
              Only files that passed validation can be used.
            </p>
          </>
        )}
      </div>

      {usableFiles.length > 1 ? (
        <div className="field">
          <label htmlFor={fieldId("validation_file")}>
            Validation file <span className="optional">(optional)</span>
          </label>
          <select
            id={fieldId("validation_file")}
            value={validationFile}
            onChange={(e) => setValidationFile(e.target.value)}
            aria-invalid={invalid("validation_file")}
            aria-describedby={errorFor("validation_file")}
          >
            <option value="">None</option>
            {usableFiles
              .filter((f) => f.id !== chosenFile)
              .map((f) => (
                <option key={f.id} value={f.id}>
                  {f.filename}
                </option>
              ))}
          </select>
        </div>
      ) : null}

      <div className="field">
        <label htmlFor={fieldId("suffix")}>
          Suffix <span className="optional">(optional)</span>
        </label>
        <input
          id={fieldId("suffix")}
          type="text"
          value={suffix}
          maxLength={64}
          autoComplete="off"
          spellCheck={false}
          onChange={(e) => setSuffix(e.target.value)}
          aria-invalid={invalid("suffix")}
          aria-describedby={[errorFor("suffix"), `${fieldId("suffix")}-hint`].filter(Boolean).join(" ")}
        />
        <p className="hint" id={`${fieldId("suffix")}-hint`}>
          Added to the fine-tuned model's name, for example "support-bot".
        </p>
      </div>

      <details className="advanced" ref={advancedRef}>
        <summary>Advanced</summary>
        <p className="hint">Leave a field empty to use the default shown.</p>
        <div className="field-grid">
          <NumberField
            id={fieldId("n_epochs")}
            label="Epochs"
            value={epochs}
            onChange={setEpochs}
            min={1}
            max={50}
            step={1}
            placeholder={String(DEFAULT_EPOCHS)}
            invalid={invalid("n_epochs")}
            describedBy={errorFor("n_epochs")}
          />
          <NumberField
            id={fieldId("lora_r")}
            label="LoRA rank"
            value={loraR}
            onChange={setLoraR}
            min={1}
            max={64}
            step={1}
            placeholder="16"
            invalid={invalid("lora_r")}
            describedBy={errorFor("lora_r")}
          />
          <NumberField
            id={fieldId("lora_alpha")}
            label="LoRA alpha"
            value={loraAlpha}
            onChange={setLoraAlpha}
            min={1}
            max={1024}
            step={1}
            placeholder={String(2 * (parseOptionalNumber(loraR) || 16))}
            invalid={invalid("lora_alpha")}
            describedBy={errorFor("lora_alpha")}
          />
          <NumberField
            id={fieldId("batch_size")}
            label="Batch size"
            value={batchSize}
            onChange={setBatchSize}
            min={1}
            max={256}
            step={1}
            placeholder="4"
            invalid={invalid("batch_size")}
            describedBy={errorFor("batch_size")}
          />
          <NumberField
            id={fieldId("learning_rate_multiplier")}
            label="Learning rate multiplier"
            value={lrMultiplier}
            onChange={setLrMultiplier}
            min={0}
            step={0.1}
            placeholder="1"
            invalid={invalid("learning_rate_multiplier")}
            describedBy={errorFor("learning_rate_multiplier")}
            hint={`Learning rate ${Number.isFinite(multiplier) ? (BASE_LEARNING_RATE * multiplier).toExponential(1) : "—"} (× ${BASE_LEARNING_RATE.toExponential(0)})`}
          />
          <NumberField
            id={fieldId("max_seq_length")}
            label="Max length (tokens)"
            value={maxLength}
            onChange={setMaxLength}
            min={16}
            max={131072}
            step={1}
            placeholder="1024"
            invalid={invalid("max_seq_length")}
            describedBy={errorFor("max_seq_length")}
          />
          <NumberField
            id={fieldId("n_gpus")}
            label="GPUs"
            value={nGpus}
            onChange={setNGpus}
            min={1}
            max={8}
            step={1}
            placeholder="1"
            invalid={invalid("n_gpus")}
            describedBy={errorFor("n_gpus")}
          />
        </div>
        <div className="field">
          <label htmlFor={fieldId("parallelism")}>Parallelism</label>
          <select
            id={fieldId("parallelism")}
            value={parallelism}
            onChange={(e) => setParallelism(e.target.value as Parallelism)}
            aria-invalid={invalid("parallelism")}
            aria-describedby={[errorFor("parallelism"), `${fieldId("parallelism")}-hint`].filter(Boolean).join(" ")}
          >
            {(Object.keys(PARALLELISM_LABELS) as Parallelism[]).map((p) => (
              <option key={p} value={p}>
                {PARALLELISM_LABELS[p]}
              </option>
            ))}
          </select>
          <p className="hint" id={`${fieldId("parallelism")}-hint`}>
            DDP copies the model to every GPU, the fastest when it fits; FSDP shards it across the
            GPUs for a model that does not fit one and needs 2 or more GPUs.
          </p>
        </div>
      </details>

      <Estimate
        loading={report.isPending && chosenFile !== ""}
        estimate={report.data?.report?.estimate ?? null}
        epochs={Number.isFinite(epochsNumber) && epochsNumber > 0 ? epochsNumber : DEFAULT_EPOCHS}
      />

      {error ? (
        <p className="state state-error" role="alert" id={`${id}-error`}>
          {error.message}
        </p>
      ) : null}

      <div className="form-actions">
        <button
          type="submit"
          className="button button-primary"
          disabled={submitting || usableFiles.length === 0}
        >
          {submitting ? "Starting…" : "Start fine-tune"}
        </button>
      </div>
      {usableFiles.length === 0 && trainingFiles.length > 0 ? (
        <p className="hint">None of your files has passed validation yet.</p>
      ) : null}
    </form>
  );
}

function NumberField(props: {
  id: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  min?: number;
  max?: number;
  step?: number;
  placeholder?: string;
  invalid?: boolean;
  describedBy?: string;
  hint?: string;
}) {
  const hintId = `${props.id}-hint`;
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      <input
        id={props.id}
        type="number"
        inputMode="decimal"
        value={props.value}
        min={props.min}
        max={props.max}
        step={props.step}
        placeholder={props.placeholder}
        onChange={(e) => props.onChange(e.target.value)}
        aria-invalid={props.invalid}
        aria-describedby={[props.describedBy, props.hint ? hintId : undefined].filter(Boolean).join(" ") || undefined}
      />
      {props.hint ? (
        <p className="hint" id={hintId}>
          {props.hint}
        </p>
      ) : null}
    </div>
  );
}

/** Tokens and time for the chosen file and epochs, from the file report's measured estimate. */
export function Estimate({
  estimate,
  epochs,
  loading,
}: {
  estimate: { tokens_per_epoch: number; tokens_per_second: number; worker_class?: string } | null;
  epochs: number;
  loading: boolean;
}) {
  let body;
  if (loading) body = <p className="hint">Estimating…</p>;
  else if (!estimate) body = <p className="hint">No estimate yet: it appears once the file's report is ready.</p>;
  else {
    const tokens = estimate.tokens_per_epoch * epochs;
    const seconds = tokens / estimate.tokens_per_second;
    body = (
      <dl className="facts">
        <div>
          <dt>Tokens to train</dt>
          <dd data-testid="estimate-tokens">{formatNumber(tokens)}</dd>
        </div>
        <div>
          <dt>Expected time</dt>
          <dd data-testid="estimate-time">{formatDuration(seconds)}</dd>
        </div>
      </dl>
    );
  }
  return (
    <section className="estimate" aria-live="polite" aria-label="Estimate">
      <h3>Estimate</h3>
      {body}
      {estimate?.worker_class ? <p className="hint">Measured on {estimate.worker_class}.</p> : null}
    </section>
  );
}
