"""Celery wiring shared by the API (which only enqueues) and the worker (which consumes).
Tasks are sent by name, so app/ never imports worker code or its heavy dependencies."""

from functools import lru_cache
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from app.config import Settings, get_settings
from app.kit import after_commit

CPU_QUEUE = "cpu"
GPU_QUEUE = "gpu"
MAX_GPUS_PER_JOB = 8


# GPU memory classes, in GiB, of the training queues. A job needing up to the first class
# goes to the plain queue that every training worker consumes; a bigger one to the queue of
# the smallest class that holds it, which only workers whose GPUs have at least that much
# consume. The classes sit a little under common cards' totals as nvidia-smi reports them
# (an "80 GB" card shows 79.6 GiB, a 141 GB H200 140.4 GiB).
MEMORY_CLASSES_GIB = (8, 12, 16, 24, 32, 40, 46, 64, 76, 92, 140, 176)
GIB = 2**30


def memory_class(need_bytes: int | None) -> int | None:
    """The memory class (GiB) of a job needing `need_bytes` per GPU; None for the plain
    queue (small jobs, and jobs whose need is unknown)."""
    if need_bytes is None or need_bytes <= MEMORY_CLASSES_GIB[0] * GIB:
        return None
    for size in MEMORY_CLASSES_GIB:
        if need_bytes <= size * GIB:
            return size
    return MEMORY_CLASSES_GIB[-1]  # bigger than every class: waits for the biggest cards


def gpu_queue(n_gpus: int = 1, memory_gib: int | None = None) -> str:
    """The queue of a job needing `n_gpus` GPUs (`gpu` for one, `gpu.<k>` for k of them) with
    `memory_gib` per GPU (suffix `.m<class>`; none for the plain queue)."""
    if not 1 <= n_gpus <= MAX_GPUS_PER_JOB:
        raise ValueError(f"n_gpus must be between 1 and {MAX_GPUS_PER_JOB}, not {n_gpus}")
    if memory_gib is not None and memory_gib not in MEMORY_CLASSES_GIB:
        raise ValueError(f"memory class must be one of {MEMORY_CLASSES_GIB}, not {memory_gib}")
    name = GPU_QUEUE if n_gpus == 1 else f"{GPU_QUEUE}.{n_gpus}"
    return name if memory_gib is None else f"{name}.m{memory_gib}"


def gpu_queues(gpus: int, memory_per_gpu_bytes: int | None = None) -> list[str]:
    """The queues a training worker with `gpus` GPUs of `memory_per_gpu_bytes` each consumes:
    every job that fits on it. A host without GPUs still trains one-GPU jobs, on its CPU; a
    host whose GPU memory is unknown takes only the plain queues."""
    classes = [
        size
        for size in MEMORY_CLASSES_GIB[1:]
        if memory_per_gpu_bytes is not None and size * GIB <= memory_per_gpu_bytes
    ]
    return [
        gpu_queue(k, memory)
        for k in range(1, min(max(gpus, 1), MAX_GPUS_PER_JOB) + 1)
        for memory in (None, *classes)
    ]


def all_train_queues() -> list[str]:
    """Every training queue there is (what a host with the most and biggest GPUs consumes)."""
    return gpu_queues(MAX_GPUS_PER_JOB, MEMORY_CLASSES_GIB[-1] * GIB)


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
    """Send `task` once the session's outermost transaction commits (never for a rolled-back
    one, nor when only a SAVEPOINT around it was released: see app/kit/after_commit.py)."""
    after_commit.defer(session, PENDING_TASKS, (task, args, queue))


PENDING_TASKS = "pending_tasks"


@after_commit.handler(PENDING_TASKS)
def _send_pending(tasks: list[tuple[str, list[Any], str]]) -> None:
    for task, args, queue in tasks:
        producer().send_task(task, args=args, queue=queue)
