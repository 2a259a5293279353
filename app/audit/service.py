"""The audit log: callers record an action in the same transaction as the change it
describes, so a rolled-back change leaves no audit line and a committed one always has one."""

from typing import Any

from sqlalchemy.orm import Session

from app.audit import repository
from app.kit.ids import new_id
from app.models import AuditEvent


def record(
    session: Session,
    *,
    tenant_id: str,
    action: str,
    target_type: str,
    target_id: str,
    actor: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        id=new_id("audit"),
        tenant_id=tenant_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        actor=actor,
        reason=reason,
        detail=detail or {},
    )
    repository.add(session, event)
    return event


def page(
    session: Session, tenant_id: str, after: str | None, limit: int, action: str | None
) -> tuple[list[AuditEvent], bool]:
    return repository.page(session, tenant_id, after, limit, action)
