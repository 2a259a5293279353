"""`INSERT … ON CONFLICT` for the dialect in use (Postgres in production, SQLite embedded);
both spell it the same way in SQLAlchemy once the right `insert` is picked."""

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_insert(session: Session, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
