"""Fine-tuning job rules: what a valid request is, how `auto` resolves, which state
transitions are allowed. Workers call the same transition helpers."""

import secrets
from typing import Any

from sqlalchemy.orm import Session

from app.catalog.catalog import get_base_model
from app.errors import InvalidRequest, NotFound
from app.files import service as files_service
from app.jobs import repository
from app.jobs.schemas import ACTIVE_STATUSES, HyperparametersIn, JobCreate
from app.kit.ids import new_id, now
from app.kit.queue import CPU_QUEUE, enqueue_after_commit
from app.models import File, FineTuningJob, JobEvent, Tenant

VALIDATE_JOB_TASK = "worker.tasks.jobs.validate_job"
BASE_LEARNING_RATE = 2e-4
MAX_SERVABLE_LORA_RANK = 64


def _resolve_hyperparameters(h: HyperparametersIn) -> dict[str, Any]:
    if h.lora_r > MAX_SERVABLE_LORA_RANK:
        raise InvalidRequest(
            f"lora_r must be <= {MAX_SERVABLE_LORA_RANK}, the largest rank the serving engine "
            "is started with.",
            param="hyperparameters.lora_r",
            code="invalid_value",
        )
    resolved = h.model_dump()
    resolved["n_epochs"] = 3 if h.n_epochs == "auto" else h.n_epochs
    resolved["batch_size"] = 4 if h.batch_size == "auto" else h.batch_size
    multiplier = 1.0 if h.learning_rate_multiplier == "auto" else h.learning_rate_multiplier
    resolved["learning_rate_multiplier"] = multiplier
    resolved["learning_rate"] = BASE_LEARNING_RATE * multiplier
    resolved["lora_alpha"] = h.lora_alpha or 2 * h.lora_r
    return resolved


def _hyperparameters_of(body: JobCreate) -> HyperparametersIn:
    if body.method and body.hyperparameters:
        raise InvalidRequest(
            "Pass hyperparameters either inside 'method' or at the top level, not both.",
            param="hyperparameters",
        )
    if body.method and body.method.supervised:
        return body.method.supervised.hyperparameters
    return body.hyperparameters or HyperparametersIn()


def _check_file(file: File, param: str = "training_file") -> None:
    """Refuse a file that cannot train: the wrong purpose, or a validation report that already
    shows bad rows (named by line). A file still being validated is checked by the job's
    `validating_files` step instead."""
    if file.purpose != "fine-tune":
        raise InvalidRequest(
            f"File {file.id} has purpose '{file.purpose}'; fine-tuning needs 'fine-tune'.",
            param=param,
            code="invalid_file_purpose",
        )
    if file.status != "error" or not file.report or not file.report.get("errors"):
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
    if get_base_model(body.model) is None:
        raise InvalidRequest(
            f"Model '{body.model}' is not available for fine-tuning. List base models with "
            "GET /v1/models.",
            param="model",
            code="model_not_available",
        )
    _check_file(files_service.get(session, tenant, body.training_file, param="training_file"))
    if body.validation_file:
        _check_file(
            files_service.get(session, tenant, body.validation_file, param="validation_file"),
            param="validation_file",
        )
    hyperparameters = _resolve_hyperparameters(_hyperparameters_of(body))
    job_id = new_id("ftjob")
    job = FineTuningJob(
        id=job_id,
        tenant_id=tenant.id,
        model=body.model,
        training_file=body.training_file,
        validation_file=body.validation_file,
        suffix=body.suffix,
        seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
        method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
        user_metadata=body.metadata,
        fine_tuned_model=None,
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
