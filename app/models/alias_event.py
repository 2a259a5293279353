from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class AliasEvent(Base):
    """An alias' history: every target it has pointed at, and why (create, repoint, promote,
    forced promote, rollback). Rows are only ever added."""

    __tablename__ = "alias_events"
    __table_args__ = (Index("ix_alias_events_alias_id_id", "alias_id", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    alias_id: Mapped[str] = mapped_column(ForeignKey("aliases.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    version: Mapped[int]
    adapter_id: Mapped[str | None] = mapped_column(String(64), default=None)
    base_model: Mapped[str | None] = mapped_column(String(255), default=None)
    system_prompt: Mapped[str | None] = mapped_column(Text, default=None)
    reason: Mapped[str | None] = mapped_column(String(2000), default=None)
    created_at: Mapped[int] = mapped_column(default=now)
