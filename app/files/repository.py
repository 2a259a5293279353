from sqlalchemy.orm import Session

from app.kit.pagination import paginate
from app.kit.tenancy import scoped
from app.models import File, FineTuningJob

ACTIVE_JOB_STATUSES = ("validating_files", "queued", "running")


def get(session: Session, tenant_id: str, file_id: str) -> File | None:
    return session.scalars(scoped(File, tenant_id).where(File.id == file_id)).first()


def add(session: Session, file: File) -> None:
    session.add(file)
    session.flush()


def page(
    session: Session,
    tenant_id: str,
    after: str | None,
    limit: int,
    purpose: str | None,
    descending: bool,
) -> tuple[list[File], bool]:
    stmt = scoped(File, tenant_id)
    if purpose:
        stmt = stmt.where(File.purpose == purpose)
    return paginate(session, stmt, File.id, after, limit, descending)


def used_by_active_job(session: Session, tenant_id: str, file_id: str) -> bool:
    stmt = scoped(FineTuningJob, tenant_id).where(
        FineTuningJob.status.in_(ACTIVE_JOB_STATUSES),
        (FineTuningJob.training_file == file_id) | (FineTuningJob.validation_file == file_id),
    )
    return session.scalars(stmt.limit(1)).first() is not None


def delete(session: Session, file: File) -> None:
    session.delete(file)
    session.flush()
