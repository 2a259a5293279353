"""Jobs whose worker went away. Celery's Redis transport hands an unacknowledged task back
only after its visibility timeout (hours, so that a long training task is never delivered
twice), so a worker killed mid-run would leave its job `running` for that long. Instead the
worker writes a heartbeat on the job, and a periodic sweep requeues a running job whose
heartbeat went stale, to resume from its latest checkpoint, or fails it once it has been
tried `job_max_attempts` times.

The same sweep finds jobs whose task message is gone: a `queued` or `validating_files` job
owns a message waiting in a broker queue or held, unacknowledged, by a worker. Redis run
without persistence (the default) loses every message when it restarts, and a publish can fail
after its transaction committed; such a job would wait forever. A job seen without its message
by two sweeps at least `job_lost_task_after` seconds apart has its task sent again. The tasks
are idempotent (compare-and-set on the job's status), so a message sent twice never runs a
job twice."""

import base64
import json
from collections.abc import Iterable
from typing import Any

from redis import Redis
from sqlalchemy.orm import Session

from app.config import get_settings
from app.jobs import repository
from app.jobs.service import VALIDATE_JOB_TASK, add_event
from app.kit.ids import now
from app.kit.queue import (
    CPU_QUEUE,
    all_train_queues,
    enqueue_after_commit,
    gpu_queue,
    memory_class,
)
from app.models import FineTuningJob

TRAIN_TASK = "worker.tasks.jobs.train_job"
VALIDATE_TASK = VALIDATE_JOB_TASK
WORKER_LOST = "worker_lost"
TASK_LOST = "task_lost"
# Redis transport internals (kombu.transport.redis): a queue's messages are a list named
# after it (one more per priority step, "<queue>\x06\x16<n>"), and every message delivered
# but not yet acknowledged is in the `unacked` hash as [message, exchange, routing key].
UNACKED_KEY = "unacked"
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
# Jobs seen without their task message: job id -> "<status> <first seen, unix seconds>".
LOST_TASKS_KEY = "loraplex:lost_tasks"


def job_gpus(job: FineTuningJob) -> int:
    """How many GPUs the job trains on (jobs created before `n_gpus` existed: one)."""
    return int(job.method[job.method["type"]]["hyperparameters"].get("n_gpus", 1))


def job_memory_class(job: FineTuningJob) -> int | None:
    """The GPU memory class (GiB) the job waits for; None for the plain queue (also for jobs
    validated before memory was estimated)."""
    estimate = (job.data_preparation or {}).get("gpu_memory") or {}
    return memory_class(estimate.get("per_gpu_bytes"))


def train_queue(job: FineTuningJob) -> str:
    """The queue that only workers with enough GPUs, and enough memory on each, consume."""
    return gpu_queue(job_gpus(job), job_memory_class(job))


def stale_before(at: int | None = None) -> int:
    return (now() if at is None else at) - int(get_settings().job_stale_after)


def requeue_stale_jobs(session: Session) -> dict[str, str]:
    """Requeue or fail every running job whose worker stopped sending heartbeats; returns
    what happened to each, by job id."""
    cutoff = stale_before()
    outcome = {}
    for job in repository.stale_running_jobs(session, cutoff):
        silent_for = f"{now() - job.heartbeat_at}s" if job.heartbeat_at else "ever"
        reason = f"The worker running this job stopped sending heartbeats (silent for {silent_for})"
        outcome[job.id] = requeue_or_fail(session, job, reason, stale_before=cutoff)
    return outcome


def requeue_or_fail(
    session: Session,
    job: FineTuningJob,
    reason: str,
    *,
    attempt: int | None = None,
    stale_before: int | None = None,
    code: str = WORKER_LOST,
) -> str:
    """Put an interrupted job back in the queue, or fail it when it has used up its attempts.
    Compare-and-set: nothing happens if the job moved on meanwhile (finished, cancelled, or
    its heartbeat came back). Returns "requeued", "failed" or "unchanged"."""
    max_attempts = get_settings().job_max_attempts
    guard = {"attempt": attempt, "stale_before": stale_before}
    if job.attempts >= max_attempts:
        error = {
            "code": code,
            "message": f"{reason}; gave up after {job.attempts} attempt(s).",
            "param": None,
        }
        if not repository.compare_and_set_status(
            session, job.id, ["running"], "failed", error=error, finished_at=now(), **guard
        ):
            return "unchanged"
        add_event(session, job, f"Fine-tuning failed: {error['message']}", level="error")
        return "failed"
    if not repository.compare_and_set_status(
        session, job.id, ["running"], "queued", heartbeat_at=None, **guard
    ):
        return "unchanged"
    add_event(
        session,
        job,
        f"{reason}; job requeued to resume from its latest checkpoint "
        f"(attempt {job.attempts + 1} of {max_attempts}).",
        level="warn",
        data={"reason": code, "attempts": job.attempts, "max_attempts": max_attempts},
    )
    enqueue_after_commit(session, TRAIN_TASK, [job.id], train_queue(job))
    return "requeued"


def _task_of(message: dict[str, Any]) -> tuple[str, str] | None:
    """(task name, job id) of a Celery message as the Redis transport stores it."""
    task = message.get("headers", {}).get("task")
    body = message.get("body", "")
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    try:
        args = json.loads(body)[0]  # Celery protocol 2: [args, kwargs, embed]
    except (ValueError, IndexError, KeyError, TypeError):
        return None
    if not task or not args:
        return None
    return str(task), str(args[0])


def _queue_keys() -> list[str]:
    queues = [CPU_QUEUE, *all_train_queues()]
    return [
        queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}"
        for queue in queues
        for step in PRIORITY_STEPS
    ]


def tasks_in_broker(client: Redis) -> set[tuple[str, str]]:
    """Every (task, job id) the broker holds: waiting in a job queue, or delivered to a worker
    and not yet acknowledged (tasks are acknowledged only when they finish)."""
    messages: list[dict[str, Any]] = []
    for key in _queue_keys():
        messages += [json.loads(item) for item in client.lrange(key, 0, -1)]
    messages += [json.loads(held)[0] for held in client.hvals(UNACKED_KEY)]
    return {task for task in map(_task_of, messages) if task}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _task_for(job: FineTuningJob) -> tuple[str, str]:
    """The task a job in this status is waiting for, and its queue."""
    if job.status == "validating_files":
        return VALIDATE_TASK, CPU_QUEUE
    return TRAIN_TASK, train_queue(job)


def resend_lost_tasks(session: Session, client: Redis, at: int | None = None) -> dict[str, str]:
    """Send again the task of every job that has been without its message for
    `job_lost_task_after` seconds (two sweeps apart); returns "resent" by job id. Jobs waiting
    for a slot of their tenant are left out: their task was consumed on purpose, and
    `scheduling.dispatch_all_waiting` sends it when a slot frees."""
    at = now() if at is None else at
    grace = int(get_settings().job_lost_task_after)
    in_broker = tasks_in_broker(client)
    waiting = repository.jobs_waiting_for_a_task(session)
    seen = {
        _text(key): _text(value).split() for key, value in client.hgetall(LOST_TASKS_KEY).items()
    }
    missing = {job.id: job for job in waiting if (_task_for(job)[0], job.id) not in in_broker}
    gone = [job_id for job_id in seen if job_id not in missing]
    if gone:
        client.hdel(LOST_TASKS_KEY, *gone)
    outcome = {}
    for job in missing.values():
        status, since = seen.get(job.id, (None, "0"))
        if status != job.status:  # first seen missing, or missing again in another status
            client.hset(LOST_TASKS_KEY, job.id, f"{job.status} {at}")
        elif at - int(since) >= grace and _resend(session, job, at - int(since)):
            outcome[job.id] = "resent"
    return outcome


def _resend(session: Session, job: FineTuningJob, missing_for: int) -> bool:
    """Compare-and-set on the job's status (a no-op write that also locks the row until
    commit): a job that moved on meanwhile is left alone."""
    status = job.status
    if not repository.compare_and_set_status(session, job.id, [status], status):
        return False
    task, queue = _task_for(job)
    step = "file validation" if task == VALIDATE_TASK else "training"
    add_event(
        session,
        job,
        f"The broker no longer held this job's {step} task (missing for {missing_for}s, e.g. "
        f"after a Redis restart); the task was sent again.",
        level="warn",
        data={"reason": TASK_LOST, "status": status, "queue": queue},
    )
    enqueue_after_commit(session, task, [job.id], queue)
    return True


def forget_resent(client: Redis, job_ids: Iterable[str]) -> None:
    """Once the resent tasks are committed and sent, the jobs start their wait afresh."""
    ids = list(job_ids)
    if ids:
        client.hdel(LOST_TASKS_KEY, *ids)
