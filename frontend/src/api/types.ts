// Shapes of the Loraplex API. Objects come from the generated OpenAPI types (schema.ts);
// what the API types loosely (the dataset report, event data) is described here.
import type { components } from "./schema";

type Schemas = components["schemas"];

export interface ApiErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

export interface ListResponse<T> {
  object?: string;
  data: T[];
  has_more: boolean;
  first_id?: string | null;
  last_id?: string | null;
}

export type Tenant = Schemas["TenantPublic"];
export type FileStatus = "uploaded" | "processed" | "error";
export type FileObject = Schemas["FilePublic"];
export type Upload = Schemas["UploadPublic"];
export type FineTuningJob = Schemas["JobPublic"];
export type JobEvent = Schemas["EventPublic"];
export type Checkpoint = Schemas["CheckpointPublic"];
export type JobCreate = Schemas["JobCreate"];
export type Hyperparameters = Schemas["HyperparametersIn"];
export type Model = Schemas["ModelPublic"];
export type Adapter = Schemas["AdapterPublic"];
export type Alias = Schemas["AliasPublic"];
export type AliasTarget = Schemas["AliasTargetPublic"];
export type UsagePage = Schemas["UsagePage"];
export type UsageDay = Schemas["UsageDay"];
export type DriftReport = Schemas["DriftReport"];
export type Feedback = Schemas["FeedbackPublic"];

export type JobStatus =
  | "validating_files"
  | "queued"
  | "running"
  | "succeeded"
  | "failed"
  | "cancelled";

export const TERMINAL_JOB_STATUSES: readonly string[] = ["succeeded", "failed", "cancelled"];

export function isTerminalStatus(status: string): boolean {
  return TERMINAL_JOB_STATUSES.includes(status);
}

/** `data` of a `type: "metrics"` job event. */
export interface MetricsData {
  step: number;
  total_steps: number;
  epoch?: number;
  train_loss: number;
  valid_loss?: number | null;
  learning_rate?: number;
  tokens_per_second?: number;
  trained_tokens?: number;
}

// The dataset report (GET /v1/files/{id}/report → `report`), written by the validator.
export interface ReportError {
  line: number | null;
  code: string;
  message: string;
}

export interface HistogramBin {
  from: number;
  to: number;
  rows: number;
}

export interface TokenStats {
  tokenizer?: string;
  counted_rows?: number;
  max_seq_length?: number;
  min?: number;
  p50?: number;
  p95?: number;
  max?: number;
  mean?: number;
  total?: number;
  trainable?: number;
  histogram?: HistogramBin[];
  truncated_rows?: number;
  truncated_lines?: number[];
}

export interface DuplicateStats {
  exact?: { rows: number; examples?: unknown[] };
  near?: { rows: number; pairs?: number; examples?: unknown[]; method?: string };
}

export interface BalanceStats {
  classification_like: boolean;
  labels?: Record<string, number>;
  top_label?: string;
  top_share?: number;
  warning?: string;
}

export interface LineList {
  rows: number;
  lines: number[];
}

export interface Contamination {
  contaminated_rows?: number;
  threshold?: number;
  ngram_words?: number;
  rows?: Record<string, unknown>[];
}

export interface TrainingEstimate {
  n_epochs: number;
  tokens_per_epoch: number;
  total_training_tokens: number;
  trainable_tokens?: number;
  worker_class?: string;
  tokens_per_second: number;
  expected_duration_seconds: number;
  expected_duration?: string;
}

export interface SampleRow {
  line: number;
  row: unknown;
}

export interface DatasetReportBody {
  format?: string | null;
  rows?: number | null;
  valid_rows?: number | null;
  error_count?: number | null;
  errors_by_code?: Record<string, number>;
  errors?: ReportError[];
  tokens?: TokenStats | null;
  duplicates?: DuplicateStats | null;
  balance?: BalanceStats | null;
  pii?: { rows: number; by_kind: Record<string, LineList> } | null;
  refusal_rows?: number;
  sample?: SampleRow[];
  contamination?: Contamination | null;
  estimate?: TrainingEstimate | null;
  advice?: { code: string; message: string }[];
}

export interface FileReport {
  object: "file.report";
  file_id: string;
  status: string;
  report: DatasetReportBody | null;
}

export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: ChatRole; content?: string | null };
    finish_reason: string | null;
  }[];
}
