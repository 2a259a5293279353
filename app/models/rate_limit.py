from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class RateLimit(Base):
    """A tenant's own limits; a NULL column falls back to the settings' default."""

    __tablename__ = "rate_limits"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    requests_per_minute: Mapped[int | None] = mapped_column(default=None)
    tokens_per_minute: Mapped[int | None] = mapped_column(default=None)
    updated_at: Mapped[int] = mapped_column(default=now)
