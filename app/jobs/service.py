"""Fine-tuning job rules: what a valid request is, how `auto` resolves, which state
transitions are allowed. Workers call the same transition helpers."""

import secrets
from typing import Any

from sqlalchemy.orm import Session

from app.adapters import service as adapters_service
from app.catalog.catalog import get_base_model
from app.errors import Conflict, InvalidRequest, NotFound
from app.files import service as files_service
from app.jobs import repository
from app.jobs.schemas import (
    ACTIVE_STATUSES,
    DpoHyperparametersIn,
    HyperparametersIn,
    JobCreate,
    MethodType,
)
from app.kit.ids import new_id, now
from app.kit.queue import CPU_QUEUE, enqueue_after_commit
from app.kit.storage import get_storage
from app.models import Adapter, File, FineTuningJob, JobCheckpoint, JobEvent, Tenant

VALIDATE_JOB_TASK = "worker.tasks.jobs.validate_job"
# Per method: `learning_rate_multiplier` scales these. DPO moves a model that already answers
# well, with a loss that sharpens quickly, so it starts from a smaller rate.
BASE_LEARNING_RATE: dict[MethodType, float] = {"supervised": 2e-4, "dpo": 5e-5}
DEFAULT_DPO_BETA = 0.1
MAX_SERVABLE_LORA_RANK = 64
PREFERENCE_FORMAT = "preference"
# The LoRA shape a job that starts from a fine-tuned model inherits from that model's adapter.
LORA_SHAPE = ("lora_r", "lora_alpha", "lora_dropout", "target_modules")


def _resolve_hyperparameters(
    h: HyperparametersIn, method: MethodType, param: str, parent: Adapter | None
) -> dict[str, Any]:
    if h.lora_r > MAX_SERVABLE_LORA_RANK:
        raise InvalidRequest(
            f"lora_r must be <= {MAX_SERVABLE_LORA_RANK}, the largest rank the serving engine "
            "is started with.",
            param=f"{param}.lora_r",
            code="invalid_value",
        )
    if method == "dpo" and h.parallelism == "fsdp":
        raise InvalidRequest(
            "Preference tuning (method.type 'dpo') runs data parallel; parallelism must be 'ddp'.",
            param=f"{param}.parallelism",
            code="invalid_value",
        )
    if h.parallelism == "fsdp" and h.n_gpus < 2:
        raise InvalidRequest(
            "parallelism 'fsdp' shards the model over several GPUs; n_gpus must be at least 2.",
            param=f"{param}.parallelism",
            code="invalid_value",
        )
    _check_token_budget(h, param)
    resolved = h.model_dump()
    resolved["n_epochs"] = 3 if h.n_epochs == "auto" else h.n_epochs
    resolved["batch_size"] = 4 if h.batch_size == "auto" else h.batch_size
    multiplier = 1.0 if h.learning_rate_multiplier == "auto" else h.learning_rate_multiplier
    resolved["learning_rate_multiplier"] = multiplier
    resolved["learning_rate"] = BASE_LEARNING_RATE[method] * multiplier
    resolved["lora_alpha"] = h.lora_alpha or 2 * h.lora_r
    if isinstance(h, DpoHyperparametersIn):
        resolved["beta"] = DEFAULT_DPO_BETA if h.beta == "auto" else h.beta
    if parent is not None:
        resolved.update(_inherited_lora_shape(h, parent, param))
    return resolved


def _check_token_budget(h: HyperparametersIn, param: str) -> None:
    budget = h.max_tokens_per_batch
    if budget is None:
        return
    if not h.packing:
        raise InvalidRequest(
            "max_tokens_per_batch needs packing (padded batches, and preference tuning's, take "
            "batch_size examples).",
            param=f"{param}.max_tokens_per_batch",
            code="invalid_value",
        )
    if budget < h.max_seq_length:
        raise InvalidRequest(
            f"max_tokens_per_batch ({budget}) must be at least max_seq_length "
            f"({h.max_seq_length}), so that every example fits in a step.",
            param=f"{param}.max_tokens_per_batch",
            code="invalid_value",
        )


def _inherited_lora_shape(h: HyperparametersIn, parent: Adapter, param: str) -> dict[str, Any]:
    given = sorted(set(LORA_SHAPE) & h.model_fields_set)
    if given:
        raise InvalidRequest(
            f"A job that starts from the fine-tuned model '{parent.name}' keeps its adapter's "
            f"LoRA shape; leave out {', '.join(given)}.",
            param=f"{param}.{given[0]}",
            code="invalid_value",
        )
    trained = (parent.manifest or {}).get("hyperparameters") or {}
    return {key: trained[key] for key in LORA_SHAPE if key in trained}


def _method_of(body: JobCreate) -> tuple[MethodType, HyperparametersIn, str]:
    """The method, its hyperparameters, and the request path they came from (for errors)."""
    if body.method and body.hyperparameters:
        raise InvalidRequest(
            "Pass hyperparameters either inside 'method' or at the top level, not both.",
            param="hyperparameters",
        )
    if body.method is None:
        return "supervised", body.hyperparameters or HyperparametersIn(), "hyperparameters"
    method = body.method
    other = "supervised" if method.type == "dpo" else "dpo"
    if getattr(method, other) is not None:
        raise InvalidRequest(
            f"method.{other} was given but method.type is '{method.type}'.",
            param=f"method.{other}",
            code="invalid_value",
        )
    param = f"method.{method.type}.hyperparameters"
    if method.type == "dpo":
        return "dpo", method.dpo.hyperparameters if method.dpo else DpoHyperparametersIn(), param
    hyperparameters = method.supervised.hyperparameters if method.supervised else None
    return "supervised", hyperparameters or HyperparametersIn(), param


def _resolve_model(
    session: Session, tenant: Tenant, model: str, method: MethodType
) -> tuple[str, Adapter | None]:
    """The base model a job trains on, and the tenant's adapter it starts from (if any)."""
    if get_base_model(model) is not None:
        return model, None
    if not model.startswith("ft:"):
        raise InvalidRequest(
            f"Model '{model}' is not available for fine-tuning. List base models with "
            "GET /v1/models.",
            param="model",
            code="model_not_available",
        )
    parent = adapters_service.find(session, tenant.id, model)
    if parent is None:
        raise NotFound(
            f"No such fine-tuned model: '{model}'.", param="model", code="model_not_found"
        )
    if method != "dpo":
        raise InvalidRequest(
            f"Supervised fine-tuning starts from a base model; '{model}' is a fine-tuned model. "
            "Preference tuning (method.type 'dpo') can start from it.",
            param="model",
            code="model_not_available",
        )
    if parent.status != "ready":
        raise Conflict(
            f"Fine-tuned model '{model}' is {parent.status}, not ready.",
            param="model",
            code="adapter_not_ready",
        )
    if get_base_model(parent.base_model) is None:
        raise InvalidRequest(
            f"Fine-tuned model '{model}' was trained on '{parent.base_model}', which is no "
            "longer available for fine-tuning.",
            param="model",
            code="model_not_available",
        )
    return parent.base_model, parent


def method_format_error(
    method: str, file_id: str, file_format: str | None, param: str
) -> dict[str, str] | None:
    """The job error when a file's rows do not fit the method: DPO trains on preference rows
    only, supervised fine-tuning on anything but them. None when they fit (or are unknown)."""
    if file_format is None:
        return None
    if method == "dpo" and file_format != PREFERENCE_FORMAT:
        message = (
            f"File {file_id} holds {file_format} rows; method 'dpo' needs preference rows "
            '({"input": {"messages": [...]}, "preferred_output": [...], '
            '"non_preferred_output": [...]}).'
        )
    elif method != "dpo" and file_format == PREFERENCE_FORMAT:
        message = (
            f"File {file_id} holds preference rows; they train with method.type 'dpo', "
            "supervised fine-tuning needs chat, prompt/completion or instruction rows."
        )
    else:
        return None
    return {"code": "invalid_file_format", "param": param, "message": message}


def _check_method_fits(file: File, method: MethodType, param: str) -> None:
    file_format = (file.report or {}).get("format")
    error = method_format_error(method, file.id, file_format, param)
    if error:
        raise InvalidRequest(error["message"], param=param, code=error["code"])


def _check_needs_validation(hyperparameters: dict[str, Any], validation_file: str | None) -> None:
    if validation_file:
        return
    for name in ("early_stopping_patience", "eval_every_steps"):
        if hyperparameters.get(name) is not None:
            raise InvalidRequest(
                f"hyperparameters.{name} needs a validation_file to measure the validation "
                "loss on.",
                param=f"hyperparameters.{name}",
                code="validation_file_required",
            )


def _check_file(file: File, param: str = "training_file", drop_invalid: bool = False) -> None:
    """Refuse a file that cannot train: the wrong purpose, or a validation report that already
    shows bad rows (named by line) — unless the job drops invalid rows and some valid ones
    remain. A file still being validated is checked by the job's `validating_files` step."""
    if file.purpose != "fine-tune":
        raise InvalidRequest(
            f"File {file.id} has purpose '{file.purpose}'; fine-tuning needs 'fine-tune'.",
            param=param,
            code="invalid_file_purpose",
        )
    if file.status != "error" or not file.report or not file.report.get("errors"):
        return
    if drop_invalid and file.report.get("valid_rows", 0) > 0:
        return
    first = file.report["errors"][0]
    where = f"line {first['line']}" if first.get("line") else "the file"
    raise InvalidRequest(
        f"File {file.id} has {file.report['error_count']} invalid row(s); {where}: "
        f"{first['message']} [{first['code']}]",
        param=param,
        code=f"invalid_{param}",
    )


def _fine_tuned_model_name(base: str, tenant: Tenant, suffix: str | None, job_id: str) -> str:
    return f"ft:{base}:{tenant.name}:{suffix or ''}:{job_id[-8:]}"


def create(session: Session, tenant: Tenant, body: JobCreate) -> FineTuningJob:
    method, requested, hp_param = _method_of(body)
    base_model, parent = _resolve_model(session, tenant, body.model, method)
    files = [("training_file", body.training_file)]
    if body.validation_file:
        files.append(("validation_file", body.validation_file))
    for param, file_id in files:
        file = files_service.get(session, tenant, file_id, param=param)
        _check_file(file, param=param, drop_invalid=body.drop_invalid)
        _check_method_fits(file, method, param)
    hyperparameters = _resolve_hyperparameters(requested, method, hp_param, parent)
    _check_needs_validation(hyperparameters, body.validation_file)
    if body.decision_report:
        from app.evals.service import eval_file  # app.evals builds on jobs: imported late

        for i, file_id in enumerate(body.decision_report.eval_files):
            eval_file(session, tenant, file_id, param=f"decision_report.eval_files.{i}")
    job_id = new_id("ftjob")
    job = FineTuningJob(
        id=job_id,
        tenant_id=tenant.id,
        model=base_model,
        parent_model=body.model if parent else None,
        parent_adapter_id=parent.id if parent else None,
        training_file=body.training_file,
        validation_file=body.validation_file,
        suffix=body.suffix,
        seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
        method={"type": method, method: {"hyperparameters": hyperparameters}},
        user_metadata=body.metadata,
        fine_tuned_model=None,
        data_options={"drop_invalid": body.drop_invalid, "dedup": body.dedup},
        decision_report_request=(
            body.decision_report.model_dump(mode="json") if body.decision_report else None
        ),
    )
    repository.add(session, job)
    add_event(session, job, f"Created fine-tuning job: {job.id}")
    enqueue_after_commit(session, VALIDATE_JOB_TASK, [job.id], CPU_QUEUE)
    return job


def planned_model_name(job: FineTuningJob, tenant: Tenant) -> str:
    return _fine_tuned_model_name(job.model, tenant, job.suffix, job.id)


def get(session: Session, tenant: Tenant, job_id: str) -> FineTuningJob:
    job = repository.get(session, tenant.id, job_id)
    if job is None:
        raise NotFound(
            f"No such fine-tuning job: '{job_id}'.",
            param="fine_tuning_job_id",
            code="fine_tuning_job_not_found",
        )
    return job


def cancel(session: Session, tenant: Tenant, job_id: str) -> FineTuningJob:
    job = get(session, tenant, job_id)
    if not repository.compare_and_set_status(
        session, job.id, ACTIVE_STATUSES, "cancelled", finished_at=now()
    ):
        raise InvalidRequest(
            f"Job '{job_id}' has already finished ({job.status}) and cannot be cancelled.",
            param="fine_tuning_job_id",
            code="job_not_cancellable",
        )
    add_event(session, job, "Job cancelled by user.")
    session.refresh(job)
    return job


def servable_checkpoint(
    session: Session, tenant_id: str, name: str
) -> tuple[JobCheckpoint, str] | None:
    """The checkpoint a `fine_tuned_model_checkpoint` name denotes, with its base model, if
    the tenant owns one of that name; refused when its files are no longer kept."""
    checkpoint = repository.get_checkpoint_by_name(session, tenant_id, name)
    if checkpoint is None:
        return None
    job = repository.get(session, tenant_id, checkpoint.job_id)
    if job is None:
        return None
    if not (get_storage().path(checkpoint.storage_key) / "adapter_config.json").is_file():
        raise Conflict(
            f"Checkpoint '{name}' is no longer stored (only the newest checkpoints of a job "
            "are kept).",
            param="model",
            code="checkpoint_unavailable",
        )
    return checkpoint, job.model


def add_event(
    session: Session,
    job: FineTuningJob,
    message: str,
    *,
    level: str = "info",
    type_: str = "message",
    data: dict[str, Any] | None = None,
) -> JobEvent:
    event = JobEvent(
        id=new_id("ftevent"),
        job_id=job.id,
        tenant_id=job.tenant_id,
        level=level,
        type=type_,
        message=message,
        data=data,
    )
    session.add(event)
    session.flush()
    return event
