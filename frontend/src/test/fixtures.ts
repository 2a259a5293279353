import type { Adapter, Alias, FineTuningJob, JobEvent } from "../api";

/** A job as the API returns it (fields the pages do not read may be missing). */
export function makeJob(status: string, patch: Partial<FineTuningJob> = {}): FineTuningJob {
  const job = {
    id: "ftjob-1",
    object: "fine_tuning.job",
    model: "SmolLM2-135M-Instruct",
    status,
    created_at: 1_700_000_000,
    finished_at: ["succeeded", "failed", "cancelled"].includes(status) ? 1_700_000_100 : null,
    fine_tuned_model: status === "succeeded" ? "ft:SmolLM2-135M-Instruct:acme:bot:ftjob-1" : null,
    trained_tokens: status === "succeeded" ? 1234 : null,
    training_file: "file-1",
    validation_file: null,
    error: null,
    hyperparameters: { n_epochs: 1, batch_size: 2, learning_rate_multiplier: 1, lora_r: 8 },
    method: { type: "supervised" },
    organization_id: "tenant-1",
    result_files: status === "succeeded" ? ["file-results"] : [],
    seed: 1,
    estimated_finish: null,
    integrations: [],
    ...patch,
  };
  return job as FineTuningJob;
}

export function metricsEvent(step: number, train: number, valid?: number, at = 1_700_000_000 + step * 10): JobEvent {
  return {
    id: `ftevent-${String(step).padStart(4, "0")}`,
    object: "fine_tuning.job.event",
    created_at: at,
    level: "info",
    message: `Step ${step}/10`,
    type: "metrics",
    data: { step, total_steps: 10, train_loss: train, ...(valid === undefined ? {} : { valid_loss: valid }) },
  };
}

export function messageEvent(id: string, message: string, at = 1_700_000_000): JobEvent {
  return { id, object: "fine_tuning.job.event", created_at: at, level: "info", message, type: "message", data: null };
}

export function makeAdapter(id: string, patch: Partial<Adapter> = {}): Adapter {
  return {
    id,
    object: "adapter",
    name: `ft:SmolLM2-135M-Instruct:acme:bot:${id.slice(-8)}`,
    base_model: "SmolLM2-135M-Instruct",
    fine_tuning_job_id: "ftjob-1",
    status: "ready",
    created_at: 1_700_000_200,
    manifest: { seed: 7, dataset_sha256: "ab".repeat(32), hyperparameters: { lora_r: 8, lora_alpha: 16, n_epochs: 1 }, final_train_loss: 0.5 },
    ...patch,
  };
}

export function makeAlias(name: string, model: string, previous: string | null = null): Alias {
  return {
    id: `alias-${name}`,
    object: "alias",
    name,
    target: { adapter_id: "adapter-1", model, system_prompt: null },
    previous: previous ? { adapter_id: "adapter-0", model: previous, system_prompt: null } : null,
    version: previous ? 2 : 1,
    created_at: 1,
    updated_at: 2,
  };
}
