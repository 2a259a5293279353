from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class Alias(Base):
    """A tenant's stable model name (`support-bot`, `support-bot@prod`) pointing at one adapter
    version, or at a base model plus a system prompt. The previous target is kept so a
    repoint can be rolled back; `version` counts repoints."""

    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_aliases_tenant_id_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(96))
    adapter_id: Mapped[str | None] = mapped_column(ForeignKey("adapters.id"), default=None)
    base_model: Mapped[str | None] = mapped_column(String(255), default=None)
    system_prompt: Mapped[str | None] = mapped_column(Text, default=None)
    previous_adapter_id: Mapped[str | None] = mapped_column(ForeignKey("adapters.id"), default=None)
    previous_base_model: Mapped[str | None] = mapped_column(String(255), default=None)
    previous_system_prompt: Mapped[str | None] = mapped_column(Text, default=None)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[int] = mapped_column(default=now)
    updated_at: Mapped[int] = mapped_column(default=now)
