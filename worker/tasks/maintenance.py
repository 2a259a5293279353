"""Periodic housekeeping, scheduled by `celery beat` (see worker/celery_app.py)."""

from app.db import session_scope
from app.jobs import recovery, scheduling
from app.uploads.service import expire_stale_uploads
from worker.celery_app import celery


@celery.task(name="worker.tasks.maintenance.expire_uploads")
def expire_uploads() -> int:
    with session_scope() as session:
        return expire_stale_uploads(session)


@celery.task(name="worker.tasks.maintenance.requeue_stale_jobs")
def requeue_stale_jobs() -> dict[str, str]:
    """Training jobs whose worker died: requeue them (they resume from their latest
    checkpoint) or fail them once they have used up their attempts. Then send the task of
    jobs waiting for a slot their tenant has free again."""
    with session_scope() as session:
        outcome = recovery.requeue_stale_jobs(session)
    with session_scope() as session:
        outcome |= {job_id: "dispatched" for job_id in scheduling.dispatch_all_waiting(session)}
    return outcome
