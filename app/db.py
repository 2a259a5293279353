"""Engine, sessions and the declarative base. The request or task boundary owns the commit."""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import JSON, BigInteger, MetaData, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.config import get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # BigInteger: byte sizes pass 2**31 and so will unix times.
    type_annotation_map = {int: BigInteger, dict[str, Any]: JSON, list[Any]: JSON}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.resolved_database_url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work for tasks and scripts: commit on success, roll back on error."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_session() -> Iterator[Session]:
    """FastAPI dependency: one session per request, committed when the handler returns."""
    with session_scope() as session:
        yield session


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection (a restart, a failover,
    a network cut), as opposed to a statement it refused: worth retrying, not the caller's
    fault."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (OperationalError, InterfaceError))


def retry_while_unavailable(work: Callable[[], T], what: str, grace: float | None = None) -> T:
    """Run `work` (one whole unit of work: it opens and commits its own session) again while
    the database is unavailable, for up to `grace` seconds (LORAPLEX_DB_OUTAGE_GRACE), so a
    database restart pauses a training run instead of failing it. `work` must be safe to run
    again: a failed commit rolled it back."""
    deadline = time.monotonic() + (get_settings().db_outage_grace if grace is None else grace)
    delay = 0.25
    while True:
        try:
            return work()
        except DBAPIError as exc:
            if not is_unavailable(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("database unavailable while %s; retrying in %.1fs: %s", what, delay, exc)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def wait_for_database(what: str, grace: float | None = None) -> None:
    """Block until the database answers (up to the grace period): before a step that moves
    files and cannot simply be run again if its commit fails."""

    def ping() -> None:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))

    retry_while_unavailable(ping, what, grace)
