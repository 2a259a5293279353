from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class EvalRun(Base):
    """One candidate (an adapter version, an alias' target, or a base model with a system
    prompt and/or few-shot examples) run on one eval file through the serving gateway.
    An alias is resolved when the run is created, so the run measures one fixed version."""

    __tablename__ = "eval_runs"
    __table_args__ = (Index("ix_eval_runs_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    eval_file_id: Mapped[str] = mapped_column(String(64), index=True)
    # The `model` the request named (alias, ft: name, adapter id or base model) and what it
    # resolved to: the adapter version, or the base model, plus the prompt the run adds.
    model: Mapped[str] = mapped_column(String(255))
    alias: Mapped[str | None] = mapped_column(String(96), default=None)
    adapter_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    base_model: Mapped[str] = mapped_column(String(255))
    system_prompt: Mapped[str | None] = mapped_column(Text, default=None)
    few_shot: Mapped[list[Any]] = mapped_column(default=list)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)  # max_tokens, judge, seed
    decision_report_id: Mapped[str | None] = mapped_column(
        ForeignKey("decision_reports.id", ondelete="SET NULL"), default=None, index=True
    )
    # queued -> running -> succeeded | failed | cancelled
    status: Mapped[str] = mapped_column(String(16), default="queued")
    rows_total: Mapped[int] = mapped_column(default=0)
    rows_done: Mapped[int] = mapped_column(default=0)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_at: Mapped[int] = mapped_column(default=now)
    started_at: Mapped[int | None] = mapped_column(default=None)
    finished_at: Mapped[int | None] = mapped_column(default=None)
