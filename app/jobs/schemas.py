"""Fine-tuning job shapes, as OpenAI's; LoRA knobs ride along inside `hyperparameters`."""

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.evals.schemas import DecisionReportCreate
from app.kit.queue import MAX_GPUS_PER_JOB
from app.models import FineTuningJob, JobCheckpoint, JobEvent

TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")
ACTIVE_STATUSES = ("validating_files", "queued", "running")


class HyperparametersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_epochs: int | Literal["auto"] = Field("auto")
    batch_size: int | Literal["auto"] = Field("auto")
    learning_rate_multiplier: float | Literal["auto"] = Field("auto")
    lora_r: int = Field(16, ge=1, le=256)
    lora_alpha: int | None = Field(None, ge=1, le=1024)
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    max_seq_length: int = Field(1024, ge=16, le=131072)
    quantization: Literal["nf4", "none"] = "nf4"
    # A resumable checkpoint every N steps (and at each epoch end), listed under /checkpoints.
    checkpoint_every_steps: int = Field(50, ge=1, le=1_000_000)
    # Validation loss every N steps (null: at each epoch end); needs a validation_file.
    eval_every_steps: int | None = Field(None, ge=1, le=1_000_000)
    # Stop once the validation loss has not improved by more than min_delta for this many
    # evaluations in a row (null: never); needs a validation_file.
    early_stopping_patience: int | None = Field(None, ge=1, le=1000)
    early_stopping_min_delta: float = Field(0.0, ge=0.0, le=100.0)
    # GPUs the job trains on; it waits `queued` for a worker with that many.
    n_gpus: int = Field(1, ge=1, le=MAX_GPUS_PER_JOB)
    # How a job on several GPUs splits the work: "ddp", the whole model on every GPU (the
    # fastest when it fits), or "fsdp", every weight and optimizer state sharded over the
    # GPUs (for a model that does not fit one GPU).
    parallelism: Literal["ddp", "fsdp"] = "ddp"
    # Padding-free packed batches through the training fast path (false: padded batches, the
    # plain transformers + peft path). Recorded in the adapter's manifest.
    packing: bool = True
    # With packing: each step takes the next examples up to this many tokens (at least
    # max_seq_length) instead of batch_size examples (null).
    max_tokens_per_batch: int | None = Field(None, ge=16, le=16_777_216)

    @field_validator("n_epochs")
    @classmethod
    def _epochs(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 50:
            raise ValueError("n_epochs must be between 1 and 50")
        return v

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= 256:
            raise ValueError("batch_size must be between 1 and 256")
        return v

    @field_validator("learning_rate_multiplier")
    @classmethod
    def _lr(cls, v: float | str) -> float | str:
        if isinstance(v, float | int) and not 0 < v <= 100:
            raise ValueError("learning_rate_multiplier must be > 0 and <= 100")
        return v

    @field_validator("target_modules")
    @classmethod
    def _targets(cls, v: list[str] | str) -> list[str] | str:
        if isinstance(v, list) and (not v or not all(m.isidentifier() for m in v)):
            raise ValueError("target_modules must be 'all-linear' or a non-empty list of names")
        return v


class DpoHyperparametersIn(HyperparametersIn):
    beta: float | Literal["auto"] = Field("auto")
    # Preference pairs train on padded batches (so max_tokens_per_batch is refused too).
    packing: Literal[False] = False

    @field_validator("beta")
    @classmethod
    def _beta(cls, v: float | str) -> float | str:
        if isinstance(v, float | int) and not (math.isfinite(v) and v > 0):
            raise ValueError("beta must be a number > 0")
        return v


class SupervisedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hyperparameters: HyperparametersIn = Field(default_factory=HyperparametersIn)


class DpoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hyperparameters: DpoHyperparametersIn = Field(default_factory=DpoHyperparametersIn)


MethodType = Literal["supervised", "dpo"]


class MethodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: MethodType = "supervised"
    supervised: SupervisedIn | None = None
    dpo: DpoIn | None = None


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    training_file: str
    validation_file: str | None = None
    suffix: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,40}$")
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    hyperparameters: HyperparametersIn | None = None
    method: MethodIn | None = None
    metadata: dict[str, str] | None = None
    integrations: list[dict[str, Any]] | None = None
    # Extensions: train on the valid rows of a file whose report shows invalid ones, and drop
    # exact duplicate rows. What was dropped is recorded in `data_preparation` and the manifest.
    drop_invalid: bool = False
    dedup: bool = False
    # Extension: the decision report to produce as soon as the job succeeds (the same body as
    # POST /v1/fine_tuning/jobs/{id}/decision_report): base + prompt against the fine-tune.
    decision_report: DecisionReportCreate | None = None


class JobError(BaseModel):
    code: str
    message: str
    param: str | None = None


class JobPublic(BaseModel):
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobError | None
    fine_tuned_model: str | None
    finished_at: int | None
    hyperparameters: dict[str, Any]
    method: dict[str, Any]
    model: str
    organization_id: str
    result_files: list[str]
    seed: int
    status: str
    trained_tokens: int | None
    training_file: str
    validation_file: str | None
    estimated_finish: int | None
    integrations: list[Any] = []
    metadata: dict[str, str] | None = None
    user_provided_suffix: str | None = None
    data_options: dict[str, bool]
    data_preparation: dict[str, Any] | None = None
    decision_report_request: dict[str, Any] | None = None

    @classmethod
    def of(cls, job: FineTuningJob) -> "JobPublic":
        return cls(
            id=job.id,
            created_at=job.created_at,
            error=JobError(**job.error) if job.error else None,
            fine_tuned_model=job.fine_tuned_model,
            finished_at=job.finished_at,
            hyperparameters=job.method[job.method["type"]]["hyperparameters"],
            method=job.method,
            # The model the job was asked to fine-tune: a base model, or a fine-tuned one.
            model=job.parent_model or job.model,
            organization_id=job.tenant_id,
            result_files=job.result_files,
            seed=job.seed,
            status=job.status,
            trained_tokens=job.trained_tokens,
            training_file=job.training_file,
            validation_file=job.validation_file,
            estimated_finish=job.estimated_finish,
            metadata=job.user_metadata,
            user_provided_suffix=job.suffix,
            data_options=job.data_options or {"drop_invalid": False, "dedup": False},
            data_preparation=job.data_preparation,
            decision_report_request=job.decision_report_request,
        )


class EventPublic(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: str
    message: str
    type: str
    data: dict[str, Any] | None = None

    @classmethod
    def of(cls, e: JobEvent) -> "EventPublic":
        return cls(
            id=e.id,
            created_at=e.created_at,
            level=e.level,
            message=e.message,
            type=e.type,
            data=e.data,
        )


class CheckpointPublic(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    metrics: dict[str, Any]
    step_number: int

    @classmethod
    def of(cls, c: JobCheckpoint) -> "CheckpointPublic":
        return cls(
            id=c.id,
            created_at=c.created_at,
            fine_tuned_model_checkpoint=c.fine_tuned_model_checkpoint,
            fine_tuning_job_id=c.job_id,
            metrics=c.metrics,
            step_number=c.step_number,
        )
