from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class JobCheckpoint(Base):
    __tablename__ = "job_checkpoints"
    __table_args__ = (
        Index("ix_job_checkpoints_tenant_id_name", "tenant_id", "fine_tuned_model_checkpoint"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    step_number: Mapped[int]
    metrics: Mapped[dict[str, Any]]
    fine_tuned_model_checkpoint: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[int] = mapped_column(default=now)
