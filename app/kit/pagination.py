"""OpenAI-style cursor pagination: `after` is the id of the last item already seen,
`limit` caps the page, `has_more` says whether another page exists."""

from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_LIMIT = 100


class ListPage(BaseModel, Generic[T]):
    object: str = "list"
    data: list[T]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


def paginate(
    session: Session,
    stmt: Select[Any],
    id_column: Any,
    after: str | None,
    limit: int,
    descending: bool = True,
) -> tuple[list[Any], bool]:
    limit = max(1, min(limit, MAX_LIMIT))
    if after:
        stmt = stmt.where(id_column < after if descending else id_column > after)
    stmt = stmt.order_by(id_column.desc() if descending else id_column.asc()).limit(limit + 1)
    rows = list(session.scalars(stmt))
    return rows[:limit], len(rows) > limit
