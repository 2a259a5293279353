from datetime import date

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class UsageDaily(Base):
    """Served requests per tenant, model version (adapter id or base model id) and UTC day.
    Rows are upserted in batches by the gateway's usage recorder, never per request."""

    __tablename__ = "usage_daily"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    served_model: Mapped[str] = mapped_column(String(255), primary_key=True)
    adapter_id: Mapped[str | None] = mapped_column(String(64), default=None)
    requests: Mapped[int] = mapped_column(default=0)
    prompt_tokens: Mapped[int] = mapped_column(default=0)
    completion_tokens: Mapped[int] = mapped_column(default=0)
    latency_ms_total: Mapped[int] = mapped_column(default=0)
    latency_ms_max: Mapped[int] = mapped_column(default=0)
