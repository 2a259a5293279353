from sqlalchemy.orm import Session

from app.kit.pagination import paginate
from app.kit.tenancy import scoped
from app.models import AuditEvent


def add(session: Session, event: AuditEvent) -> None:
    session.add(event)
    session.flush()


def page(
    session: Session, tenant_id: str, after: str | None, limit: int, action: str | None
) -> tuple[list[AuditEvent], bool]:
    stmt = scoped(AuditEvent, tenant_id)
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return paginate(session, stmt, AuditEvent.id, after, limit)
