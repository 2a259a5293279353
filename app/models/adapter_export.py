from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class AdapterExport(Base):
    """A downloadable artefact made from an adapter version by a worker: the adapter alone,
    or the adapter merged into the base weights (safetensors)."""

    __tablename__ = "adapter_exports"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    adapter_id: Mapped[str] = mapped_column(
        ForeignKey("adapters.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # merged | adapter
    # queued -> running -> succeeded | failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    storage_key: Mapped[str | None] = mapped_column(String(512), default=None)
    bytes: Mapped[int | None] = mapped_column(default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_at: Mapped[int] = mapped_column(default=now)
    finished_at: Mapped[int | None] = mapped_column(default=None)
