from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class FineTuningJob(Base):
    __tablename__ = "fine_tuning_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(255))  # the base model, also when parent_model is set
    # Set when the job starts from a fine-tuned model: its `ft:…` name as requested, and its
    # adapter. No foreign key: adapters already reference jobs, and launch checks the adapter.
    parent_model: Mapped[str | None] = mapped_column(String(255), default=None)
    parent_adapter_id: Mapped[str | None] = mapped_column(String(64), default=None)
    training_file: Mapped[str] = mapped_column(String(64))
    validation_file: Mapped[str | None] = mapped_column(String(64), default=None)
    suffix: Mapped[str | None] = mapped_column(String(64), default=None)
    seed: Mapped[int]
    method: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(32), default="validating_files", index=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(255), default=None)
    trained_tokens: Mapped[int | None] = mapped_column(default=None)
    result_files: Mapped[list[Any]] = mapped_column(default=list)
    user_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", default=None)
    created_at: Mapped[int] = mapped_column(default=now)
    started_at: Mapped[int | None] = mapped_column(default=None)
    finished_at: Mapped[int | None] = mapped_column(default=None)
    estimated_finish: Mapped[int | None] = mapped_column(default=None)
    # {"drop_invalid": bool, "dedup": bool}: how the training data is cleaned before training
    data_options: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # what validation found for this job: rows dropped, the final dataset's sha256, token
    # counts with the job's own base model and max_seq_length, the estimate
    data_preparation: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # A decision report to produce once the job succeeds (the body of
    # POST /v1/fine_tuning/jobs/{id}/decision_report), given when the job was created.
    decision_report_request: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # Written by the worker running the job; a stale one means that worker is gone.
    heartbeat_at: Mapped[int | None] = mapped_column(default=None)
    # Times a worker has claimed the job; bounded, so a job that kills workers stops.
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # Queued behind the tenant's running-jobs limit, with no task in the broker: the next
    # job of the tenant to finish (or the periodic sweep) sends its task.
    waiting_for_slot: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
