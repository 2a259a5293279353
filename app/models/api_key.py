from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.kit.ids import now


class ApiKey(Base):
    """Only a keyed hash of the secret is stored; `prefix` lets people tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(128), default=None)
    scopes: Mapped[list[Any]] = mapped_column(default=lambda: ["all"])
    created_at: Mapped[int] = mapped_column(default=now)
    revoked_at: Mapped[int | None] = mapped_column(default=None)
