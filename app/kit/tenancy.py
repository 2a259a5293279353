"""The one place tenant scoping happens. Every repository read of a tenant-owned row goes
through `scoped()`, so a foreign id simply finds nothing (and the API answers 404)."""

from typing import Any, TypeVar

from sqlalchemy import Select, select

T = TypeVar("T")


def scoped(model: type[T], tenant_id: str) -> Select[T]:
    tenant_column: Any = model.tenant_id  # type: ignore[attr-defined]
    return select(model).where(tenant_column == tenant_id)
