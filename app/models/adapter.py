from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class Adapter(Base):
    """A trained LoRA adapter version. `name` is the public `ft:…` model id; the gateway
    serves it under `id` so tenants never see storage paths."""

    __tablename__ = "adapters"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("fine_tuning_jobs.id", ondelete="SET NULL"), default=None
    )
    name: Mapped[str] = mapped_column(String(255), unique=True)
    base_model: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(512))
    manifest: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="ready")
    created_at: Mapped[int] = mapped_column(default=now)
