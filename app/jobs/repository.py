from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.kit.pagination import paginate
from app.kit.tenancy import scoped
from app.models import FineTuningJob, JobCheckpoint, JobEvent


def get(session: Session, tenant_id: str, job_id: str) -> FineTuningJob | None:
    return session.scalars(
        scoped(FineTuningJob, tenant_id).where(FineTuningJob.id == job_id)
    ).first()


def add(session: Session, job: FineTuningJob) -> None:
    session.add(job)
    session.flush()


def page(
    session: Session, tenant_id: str, after: str | None, limit: int
) -> tuple[list[FineTuningJob], bool]:
    return paginate(session, scoped(FineTuningJob, tenant_id), FineTuningJob.id, after, limit)


def events_page(
    session: Session, tenant_id: str, job_id: str, after: str | None, limit: int
) -> tuple[list[JobEvent], bool]:
    stmt = scoped(JobEvent, tenant_id).where(JobEvent.job_id == job_id)
    return paginate(session, stmt, JobEvent.id, after, limit)


def checkpoints_page(
    session: Session, tenant_id: str, job_id: str, after: str | None, limit: int
) -> tuple[list[JobCheckpoint], bool]:
    stmt = scoped(JobCheckpoint, tenant_id).where(JobCheckpoint.job_id == job_id)
    return paginate(session, stmt, JobCheckpoint.id, after, limit)


def compare_and_set_status(
    session: Session, job_id: str, from_statuses: Iterable[str], to_status: str, **fields: Any
) -> bool:
    """Move a job between states atomically: the update applies only if the job is still in
    one of `from_statuses`, so a racing cancel and a finishing worker cannot both win."""
    result = session.execute(
        update(FineTuningJob)
        .where(FineTuningJob.id == job_id, FineTuningJob.status.in_(list(from_statuses)))
        .values(status=to_status, **fields)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def events_since(
    session: Session, tenant_id: str, job_id: str, after: str
) -> tuple[FineTuningJob | None, list[JobEvent]]:
    """The job and its events with an id above `after`, oldest first. The job is read first,
    so every event committed before a terminal status is in the same answer."""
    job = session.scalars(
        scoped(FineTuningJob, tenant_id).where(FineTuningJob.id == job_id)
    ).first()
    stmt = (
        scoped(JobEvent, tenant_id)
        .where(JobEvent.job_id == job_id, JobEvent.id > after)
        .order_by(JobEvent.id.asc())
    )
    return job, list(session.scalars(stmt))
