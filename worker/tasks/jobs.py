"""Job tasks: thin wrappers that load the row, call the code, record the result. Each is
idempotent — a redelivered message finds the job already past its step and does nothing."""

from typing import Any

from sqlalchemy.orm import Session

from app.catalog.catalog import get_base_model
from app.db import session_scope
from app.jobs import repository as jobs_repo
from app.jobs.recovery import job_gpus, job_memory_class, train_queue
from app.jobs.service import add_event, method_format_error
from app.kit.ids import now
from app.kit.queue import enqueue_after_commit
from app.models import File, FineTuningJob
from worker.celery_app import celery
from worker.datasets.job_plan import plan_job_data, summary
from worker.datasets.service import job_file_error
from worker.training.gpu_memory import estimate_for_model
from worker.training.launch import run_training_job

TRAIN_TASK = "worker.tasks.jobs.train_job"


@celery.task(name="worker.tasks.jobs.validate_job")
def validate_job(job_id: str) -> None:
    with session_scope() as session:
        job = session.get(FineTuningJob, job_id)
        if job is None or job.status != "validating_files":
            return
        drop_invalid = bool((job.data_options or {}).get("drop_invalid"))
        files = [(job.training_file, "training_file")]
        if job.validation_file:
            files.append((job.validation_file, "validation_file"))
        for file_id, param in files:
            error = job_file_error(session, file_id, param, drop_invalid) or _method_error(
                session, job, file_id, param
            )
            if error:
                _fail_validation(session, job, error)
                return
        try:
            plan = plan_job_data(session, job)
        except ValueError as exc:
            message = f"Training file {job.training_file} cannot be used: {exc}"
            error = {"code": "invalid_training_file", "param": "training_file", "message": message}
            _fail_validation(session, job, error)
            return
        plan["gpu_memory"] = _gpu_memory(job)
        if jobs_repo.compare_and_set_status(
            session, job.id, ["validating_files"], "queued", data_preparation=plan
        ):
            session.refresh(job)  # the update above went around the loaded row
            details = summary(plan)
            n_gpus, queue, memory = job_gpus(job), train_queue(job), job_memory_class(job)
            waiting = _waiting_for(n_gpus, memory)
            add_event(
                session,
                job,
                "Files validated; job queued for training."
                + (f" {details}" if details else "")
                + waiting,
                data={
                    "data_preparation": _event_data(plan),
                    "n_gpus": n_gpus,
                    "queue": queue,
                    "gpu_memory_per_gpu_bytes": (plan["gpu_memory"] or {}).get("per_gpu_bytes"),
                },
            )
            enqueue_after_commit(session, TRAIN_TASK, [job.id], queue)


def _gpu_memory(job: FineTuningJob) -> dict[str, int] | None:
    entry = get_base_model(job.model)
    if entry is None:
        return None
    return estimate_for_model(entry.local_path, job.method[job.method["type"]]["hyperparameters"])


def _waiting_for(n_gpus: int, memory_gib: int | None) -> str:
    if n_gpus == 1 and memory_gib is None:
        return ""
    gpus = f"{n_gpus} GPU{'s' if n_gpus > 1 else ''}"
    each = f" with at least {memory_gib} GiB each" if memory_gib else ""
    return f" Waiting for a worker with {gpus}{each}."


def _fail_validation(session: Session, job: FineTuningJob, error: dict[str, str]) -> None:
    if jobs_repo.compare_and_set_status(
        session, job.id, ["validating_files"], "failed", error=error, finished_at=now()
    ):
        add_event(session, job, error["message"], level="error")


def _event_data(plan: dict[str, Any]) -> dict[str, Any]:
    keys = ("rows_in", "rows_kept", "dropped_invalid", "dropped_duplicates", "final_dataset_sha256")
    data = {key: plan[key] for key in keys if key in plan}
    if plan.get("estimate"):
        data["estimate"] = plan["estimate"]
    return data


@celery.task(name=TRAIN_TASK)
def train_job(job_id: str) -> None:
    run_training_job(job_id)


def _method_error(
    session: Session, job: FineTuningJob, file_id: str, param: str
) -> dict[str, str] | None:
    """A file validated after the job was created may still hold rows of the wrong kind."""
    file = session.get(File, file_id)
    file_format = (file.report or {}).get("format") if file else None
    return method_format_error(job.method["type"], file_id, file_format, param)
