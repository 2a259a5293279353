from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class CompletionRecord(Base):
    """Which tenant and model version produced a completion id, so feedback on that id lands
    on the right adapter version. Written in batches by the gateway."""

    __tablename__ = "completion_records"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(255))  # what the client asked for
    served_model: Mapped[str] = mapped_column(String(255))  # adapter id or base model id
    adapter_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    created_at: Mapped[int] = mapped_column(default=now)
