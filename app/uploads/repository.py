from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.kit.tenancy import scoped
from app.models import Upload, UploadPart


def get(session: Session, tenant_id: str, upload_id: str) -> Upload | None:
    return session.scalars(scoped(Upload, tenant_id).where(Upload.id == upload_id)).first()


def add(session: Session, row: Upload | UploadPart) -> None:
    session.add(row)
    session.flush()


def parts_by_id(
    session: Session, tenant_id: str, upload_id: str, part_ids: Iterable[str]
) -> dict[str, UploadPart]:
    stmt = scoped(UploadPart, tenant_id).where(
        UploadPart.upload_id == upload_id, UploadPart.id.in_(list(part_ids))
    )
    return {p.id: p for p in session.scalars(stmt)}


def delete_parts(session: Session, upload_id: str) -> None:
    session.execute(
        delete(UploadPart)
        .where(UploadPart.upload_id == upload_id)
        .execution_options(synchronize_session=False)
    )


def compare_and_set_status(
    session: Session,
    upload_id: str,
    from_statuses: Iterable[str],
    to_status: str,
    *,
    expiring_by: int | None = None,
    live_at: int | None = None,
    **fields: Any,
) -> bool:
    """Move an upload between states atomically: the update applies only if the upload is
    still in one of `from_statuses` (and, with `expiring_by`, has expired by then; with
    `live_at`, has not yet expired then), so racing completes, cancels and expiries cannot
    both win. On Postgres the updated row stays locked until the transaction ends."""
    stmt = update(Upload).where(Upload.id == upload_id, Upload.status.in_(list(from_statuses)))
    if expiring_by is not None:
        stmt = stmt.where(Upload.expires_at <= expiring_by)
    if live_at is not None:
        stmt = stmt.where(Upload.expires_at > live_at)
    result = session.execute(
        stmt.values(status=to_status, **fields).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def stale_pending(session: Session, at: int, limit: int = 500) -> list[tuple[str, str]]:
    """(id, tenant_id) of pending uploads of every tenant that expired by `at`: the expiry
    sweep's own query, which acts for the platform rather than for one tenant."""
    stmt = (
        select(Upload.id, Upload.tenant_id)
        .where(Upload.status == "pending", Upload.expires_at <= at)
        .order_by(Upload.expires_at)
        .limit(limit)
    )
    return [(row.id, row.tenant_id) for row in session.execute(stmt)]
