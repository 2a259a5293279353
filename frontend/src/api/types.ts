// Shapes of the Loraplex API (OpenAI-compatible). Timestamps are Unix seconds.

export interface ApiErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
}

export interface ListResponse<T> {
  object: "list";
  data: T[];
  has_more?: boolean;
  first_id?: string | null;
  last_id?: string | null;
}

export interface Tenant {
  object: "tenant";
  id: string;
  name: string;
  created_at: number;
}

export type FileStatus = "uploaded" | "processed" | "error";

export interface FileObject {
  id: string;
  object: "file";
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: FileStatus;
  status_details: string | null;
  sha256: string;
}

export interface FileReportError {
  line: number | null;
  code: string;
  message: string;
}

export interface FileReportBody {
  format?: string | null;
  rows?: number | null;
  errors?: FileReportError[];
  error_count?: number | null;
  // The validator may add more facts (token counts, warnings…); they are shown generically.
  [key: string]: unknown;
}

export interface FileReport {
  object: "file.report";
  file_id: string;
  status: FileStatus;
  report: FileReportBody | null;
}

export type JobStatus =
  | "validating_files"
  | "queued"
  | "running"
  | "succeeded"
  | "failed"
  | "cancelled";

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "cancelled"];

export function isTerminalStatus(status: JobStatus): boolean {
  return TERMINAL_JOB_STATUSES.includes(status);
}

export interface JobHyperparameters {
  n_epochs?: number | "auto" | null;
  batch_size?: number | "auto" | null;
  learning_rate_multiplier?: number | "auto" | null;
  lora_r?: number | null;
  lora_alpha?: number | null;
  lora_dropout?: number | null;
  max_seq_length?: number | null;
  quantization?: string | null;
}

export interface JobError {
  code: string | null;
  message: string;
  param: string | null;
}

export interface FineTuningJob {
  id: string;
  object: "fine_tuning.job";
  model: string;
  status: JobStatus;
  created_at: number;
  finished_at: number | null;
  fine_tuned_model: string | null;
  trained_tokens: number | null;
  training_file: string;
  validation_file: string | null;
  error: JobError | null;
  hyperparameters: JobHyperparameters | null;
  estimated_finish: number | null;
  suffix?: string | null;
}

export interface CreateJobHyperparameters {
  n_epochs?: number;
  batch_size?: number;
  learning_rate_multiplier?: number;
  lora_r?: number;
}

export interface CreateJobRequest {
  model: string;
  training_file: string;
  suffix?: string;
  method: {
    type: "supervised";
    supervised: { hyperparameters: CreateJobHyperparameters };
  };
}

export interface MetricsData {
  step: number;
  total_steps: number;
  train_loss: number;
  learning_rate?: number;
  tokens_per_second?: number;
}

export interface JobEvent {
  id: string;
  object: "fine_tuning.job.event";
  created_at: number;
  level: "info" | "warn" | "error" | string;
  message: string;
  type: "message" | "metrics";
  data: Partial<MetricsData> | Record<string, unknown> | null;
}

export interface Model {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
  parent?: string | null;
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
