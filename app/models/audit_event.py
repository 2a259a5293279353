from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class AuditEvent(Base):
    """One security-relevant action (key created or revoked, promotion, deletion, export),
    kept per tenant and never updated."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(64))  # e.g. "alias.promote", "api_key.revoke"
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(128))
    actor: Mapped[str | None] = mapped_column(String(64), default=None)  # api key id, or "cli"
    reason: Mapped[str | None] = mapped_column(String(2000), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[int] = mapped_column(default=now)
