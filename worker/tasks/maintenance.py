"""Periodic housekeeping, scheduled by `celery beat` (see worker/celery_app.py)."""

from app.db import session_scope
from app.uploads.service import expire_stale_uploads
from worker.celery_app import celery


@celery.task(name="worker.tasks.maintenance.expire_uploads")
def expire_uploads() -> int:
    with session_scope() as session:
        return expire_stale_uploads(session)
