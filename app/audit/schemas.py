from typing import Any, Literal

from pydantic import BaseModel

from app.models import AuditEvent


class AuditEventPublic(BaseModel):
    id: str
    object: Literal["audit_event"] = "audit_event"
    action: str
    target_type: str
    target_id: str
    actor: str | None
    reason: str | None
    detail: dict[str, Any]
    created_at: int

    @classmethod
    def of(cls, e: AuditEvent) -> "AuditEventPublic":
        return cls(
            id=e.id,
            action=e.action,
            target_type=e.target_type,
            target_id=e.target_id,
            actor=e.actor,
            reason=e.reason,
            detail=e.detail,
            created_at=e.created_at,
        )
