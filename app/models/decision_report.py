from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class DecisionReport(Base):
    """Should this fine-tune ship? The same eval files run for the baseline (base model +
    system prompt / few-shot) and for the job's adapter; the report compares them once every
    run has finished."""

    __tablename__ = "decision_reports"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"), index=True
    )
    adapter_id: Mapped[str] = mapped_column(String(64))
    eval_file_ids: Mapped[list[Any]]
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # running -> succeeded | failed
    status: Mapped[str] = mapped_column(String(16), default="running")
    report: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_at: Mapped[int] = mapped_column(default=now)
    finished_at: Mapped[int | None] = mapped_column(default=None)
