"""Test configuration: real Postgres (database `test`), real Redis (db 15), a throw-away data
directory, and the base model pulled by `make setup` (var/models)."""

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(tempfile.mkdtemp(prefix="loraplex-test-"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


os.environ.update(
    {
        "LORAPLEX_ENV": "test",
        "DATABASE_URL": os.environ.get(
            "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
        "LORAPLEX_DATA_DIR": str(DATA_DIR),
        "LORAPLEX_MODELS_DIR": os.environ.get("LORAPLEX_MODELS_DIR", str(ROOT / "var" / "models")),
        "LORAPLEX_API_PORT": str(_free_port()),
        "LORAPLEX_VLLM_URL": f"http://127.0.0.1:{_free_port()}",
    }
)


def _reset_database() -> None:
    from alembic import command
    from sqlalchemy import text

    from app.cli import alembic_config
    from app.db import get_engine

    with get_engine().begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    command.upgrade(alembic_config(), "head")


def empty_task_queues(redis_url: str) -> None:
    """Drop the tasks earlier tests left in the broker's queues (tests enqueue, but nothing
    consumes them unless a worker runs): a worker started later must not train other tests'
    jobs first. Only the queues' lists go; kombu's bindings stay, or a running stack's
    producers (which declared them once) would publish into nothing."""
    if not redis_url:
        return
    import redis

    from app.kit.queue import CPU_QUEUE, all_train_queues

    client = redis.Redis.from_url(redis_url)
    queues = {CPU_QUEUE.encode(), *(q.encode() for q in all_train_queues())}
    for key in client.scan_iter(count=1000):
        if key.split(b"\x06\x16")[0] in queues:  # priority lists are "<queue>\x06\x16<n>"
            client.delete(key)


# Platform stacks started by tests/e2e, while they run (the package-wide one included).
LIVE_STACKS: list[Any] = []


@pytest.fixture(scope="module")
def own_workers() -> Iterator[None]:
    """For modules that run their own Celery workers: the workers and beat of any platform
    stack still running stop for the module's duration — they share the queues and the
    database, and would take this module's tasks or sweep its jobs."""
    paused = [stack for stack in LIVE_STACKS if "worker-gpu" in stack.processes]
    for stack in paused:
        stack.stop(["worker-cpu", "worker-gpu", "beat"])
    try:
        yield
    finally:
        for stack in paused:
            stack.start_workers()


@pytest.fixture(scope="module", autouse=True)
def fresh_task_queues() -> None:
    """Every test module starts with empty task queues."""
    empty_task_queues(os.environ["REDIS_URL"])


def _reset_redis() -> None:
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


@pytest.fixture(scope="session", autouse=True)
def platform_state() -> Iterator[None]:
    """A fresh schema (built by the migrations) and an empty broker for the whole run."""
    _reset_database()
    _reset_redis()
    yield


@pytest.fixture
def make_tenant():  # type: ignore[no-untyped-def]
    """Create a tenant through the service layer; returns (tenant_id, api_key)."""
    import secrets

    from app.db import session_scope
    from app.tenants.service import create_tenant

    def _make(prefix: str = "t") -> tuple[str, str]:
        with session_scope() as session:
            tenant, key = create_tenant(session, f"{prefix}-{secrets.token_hex(4)}")
        return tenant.id, key

    return _make
