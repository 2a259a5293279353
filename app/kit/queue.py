"""Celery wiring shared by the API (which only enqueues) and the worker (which consumes).
Tasks are sent by name, so app/ never imports worker code or its heavy dependencies."""

from functools import lru_cache
from typing import Any

from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.config import Settings, get_settings

CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"
MAX_GPUS_PER_JOB = 8


def gpu_queue(n_gpus: int = 1) -> str:
    """The queue of a job needing `n_gpus` GPUs: `gpu` for one, `gpu.<k>` for k of them."""
    if not 1 <= n_gpus <= MAX_GPUS_PER_JOB:
        raise ValueError(f"n_gpus must be between 1 and {MAX_GPUS_PER_JOB}, not {n_gpus}")
    return GPU_QUEUE if n_gpus == 1 else f"{GPU_QUEUE}.{n_gpus}"


def gpu_queues(gpus: int) -> list[str]:
    """The queues a training worker with `gpus` GPUs consumes: every job that fits on it. A
    host without GPUs still trains one-GPU jobs, on its CPU."""
    return [gpu_queue(k) for k in range(1, min(max(gpus, 1), MAX_GPUS_PER_JOB) + 1)]


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_default_queue": CPU_QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        # A broker restart must not end a worker, however long it takes: retry forever. And
        # a task running when the connection drops goes on (training outlives a Redis
        # restart); the job's row in Postgres, not the broker's message, says who owns it.
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_hijack_root_logger": False,
    }
    if settings.broker_url.startswith("filesystem"):
        folder = settings.broker_dir
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    else:
        # A long training task must not be redelivered while it is still running.
        config["broker_transport_options"] = {"visibility_timeout": 24 * 3600}
    return config


@lru_cache
def producer() -> Celery:
    app = Celery("loraplex-api")
    app.conf.update(celery_config(get_settings()))
    return app


def enqueue_after_commit(
    session: Session, task: str, args: list[Any], queue: str = CPU_QUEUE
) -> None:
    """Send `task` once the session's transaction commits (never for a rolled-back one)."""
    session.info.setdefault("pending_tasks", []).append((task, args, queue))


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    for task, args, queue in session.info.pop("pending_tasks", []):
        producer().send_task(task, args=args, queue=queue)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop("pending_tasks", None)
