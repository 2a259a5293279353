from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class Feedback(Base):
    """A thumbs up/down on one completion, tied to the adapter version that produced it.
    One per completion: rating again replaces the previous rating."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_adapter_id_created_at", "adapter_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    completion_id: Mapped[str] = mapped_column(
        ForeignKey("completion_records.id", ondelete="CASCADE"), unique=True
    )
    adapter_id: Mapped[str | None] = mapped_column(String(64), default=None)
    served_model: Mapped[str] = mapped_column(String(255))
    rating: Mapped[str] = mapped_column(String(8))
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[int] = mapped_column(default=now)
