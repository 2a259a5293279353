"""Jobs whose worker went away. Celery's Redis transport hands an unacknowledged task back
only after its visibility timeout (hours, so that a long training task is never delivered
twice), so a worker killed mid-run would leave its job `running` for that long. Instead the
worker writes a heartbeat on the job, and a periodic sweep requeues a running job whose
heartbeat went stale, to resume from its latest checkpoint, or fails it once it has been
tried `job_max_attempts` times."""

from sqlalchemy.orm import Session

from app.config import get_settings
from app.jobs import repository
from app.jobs.service import add_event
from app.kit.ids import now
from app.kit.queue import enqueue_after_commit, gpu_queue, memory_class
from app.models import FineTuningJob

TRAIN_TASK = "worker.tasks.jobs.train_job"
WORKER_LOST = "worker_lost"


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
