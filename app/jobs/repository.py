from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.kit.pagination import paginate
from app.kit.tenancy import scoped
from app.models import FineTuningJob, JobCheckpoint, JobEvent, Tenant


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


def get_checkpoint_by_name(session: Session, tenant_id: str, name: str) -> JobCheckpoint | None:
    stmt = scoped(JobCheckpoint, tenant_id).where(JobCheckpoint.fine_tuned_model_checkpoint == name)
    return session.scalars(stmt.order_by(JobCheckpoint.created_at.desc())).first()


def claim_for_training(session: Session, job_id: str, at: int, stale_before: int) -> int | None:
    """Take a job for training: a queued one, or a running one whose worker stopped sending
    heartbeats before `stale_before` (a redelivered task of a dead worker). A running job with
    a live worker is left alone, so a duplicate delivery never trains it twice. Returns the
    attempt number the claim holds, None when there was nothing to claim."""
    result = session.execute(
        update(FineTuningJob)
        .where(
            FineTuningJob.id == job_id,
            or_(
                FineTuningJob.status == "queued",
                (FineTuningJob.status == "running")
                & (
                    FineTuningJob.heartbeat_at.is_(None)
                    | (FineTuningJob.heartbeat_at < stale_before)
                ),
            ),
        )
        .values(
            status="running",
            heartbeat_at=at,
            attempts=FineTuningJob.attempts + 1,
            waiting_for_slot=False,
            started_at=func.coalesce(FineTuningJob.started_at, at),
        )
        .returning(FineTuningJob.attempts)
        .execution_options(synchronize_session=False)
    )
    attempt = result.scalar_one_or_none()
    return int(attempt) if attempt is not None else None


def lock_tenant_jobs(session: Session, tenant_id: str) -> None:
    """Serialise claims of one tenant's jobs until the transaction ends, so that two workers
    cannot both take the tenant's last free slot."""
    session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())


def count_running(session: Session, tenant_id: str) -> int:
    stmt = select(func.count()).select_from(
        scoped(FineTuningJob, tenant_id).where(FineTuningJob.status == "running").subquery()
    )
    return int(session.scalar(stmt) or 0)


def set_waiting_for_slot(session: Session, job_id: str, waiting: bool) -> bool:
    """Compare-and-set on a queued job; False when it was already so (or is not queued)."""
    result = session.execute(
        update(FineTuningJob)
        .where(
            FineTuningJob.id == job_id,
            FineTuningJob.status == "queued",
            FineTuningJob.waiting_for_slot.is_(not waiting),
        )
        .values(waiting_for_slot=waiting)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def waiting_jobs(session: Session, tenant_id: str, limit: int | None) -> list[FineTuningJob]:
    stmt = scoped(FineTuningJob, tenant_id).where(
        FineTuningJob.status == "queued", FineTuningJob.waiting_for_slot.is_(True)
    )
    return list(
        session.scalars(stmt.order_by(FineTuningJob.created_at, FineTuningJob.id).limit(limit))
    )


def tenants_with_waiting_jobs(session: Session) -> list[str]:
    """Across tenants: only the platform's own housekeeping calls it."""
    stmt = select(FineTuningJob.tenant_id).where(
        FineTuningJob.status == "queued", FineTuningJob.waiting_for_slot.is_(True)
    )
    return list(session.scalars(stmt.distinct()))


def record_heartbeat(session: Session, job_id: str, attempt: int, at: int) -> bool:
    """False when the attempt no longer holds the job (cancelled, requeued, claimed again)."""
    result = session.execute(
        update(FineTuningJob)
        .where(
            FineTuningJob.id == job_id,
            FineTuningJob.status == "running",
            FineTuningJob.attempts == attempt,
        )
        .values(heartbeat_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def stale_running_jobs(session: Session, stale_before: int) -> list[FineTuningJob]:
    """Running jobs whose worker has not been heard from since `stale_before`. Across tenants:
    only the platform's own housekeeping calls it."""
    stmt = select(FineTuningJob).where(
        FineTuningJob.status == "running",
        or_(FineTuningJob.heartbeat_at.is_(None), FineTuningJob.heartbeat_at < stale_before),
    )
    return list(session.scalars(stmt.order_by(FineTuningJob.id)))


def jobs_waiting_for_a_task(session: Session) -> list[FineTuningJob]:
    """Jobs that own a task message in the broker: being validated, or queued for training
    and not held back for a slot of their tenant. Across tenants: only the platform's own
    housekeeping calls it."""
    stmt = select(FineTuningJob).where(
        or_(
            FineTuningJob.status == "validating_files",
            (FineTuningJob.status == "queued") & FineTuningJob.waiting_for_slot.is_(False),
        )
    )
    return list(session.scalars(stmt.order_by(FineTuningJob.id)))


def compare_and_set_status(
    session: Session,
    job_id: str,
    from_statuses: Iterable[str],
    to_status: str,
    *,
    attempt: int | None = None,
    stale_before: int | None = None,
    **fields: Any,
) -> bool:
    """Move a job between states atomically: the update applies only if the job is still in
    one of `from_statuses`, so a racing cancel and a finishing worker cannot both win. With
    `attempt`, only while that attempt still holds the job (a worker whose job was requeued
    and claimed again changes nothing); with `stale_before`, only while its heartbeat is
    older than that."""
    conditions = [FineTuningJob.id == job_id, FineTuningJob.status.in_(list(from_statuses))]
    if attempt is not None:
        conditions.append(FineTuningJob.attempts == attempt)
    if stale_before is not None:
        conditions.append(
            or_(FineTuningJob.heartbeat_at.is_(None), FineTuningJob.heartbeat_at < stale_before)
        )
    result = session.execute(
        update(FineTuningJob)
        .where(*conditions)
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
