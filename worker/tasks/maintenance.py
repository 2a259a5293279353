"""Periodic housekeeping, scheduled by `celery beat` (see worker/celery_app.py)."""

from app.config import get_settings
from app.db import session_scope
from app.jobs import recovery, scheduling
from app.kit.workers import redis_client
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
    jobs waiting for a slot their tenant has free again, and of jobs whose task the broker
    lost (Redis only: the filesystem broker of the embedded mode keeps its messages on disk)."""
    with session_scope() as session:
        outcome = recovery.requeue_stale_jobs(session)
    with session_scope() as session:
        outcome |= {job_id: "dispatched" for job_id in scheduling.dispatch_all_waiting(session)}
    redis_url = get_settings().redis_url
    if redis_url:
        client = redis_client(redis_url)
        with session_scope() as session:
            resent = recovery.resend_lost_tasks(session, client)
        recovery.forget_resent(client, resent)
        outcome |= resent
    return outcome
