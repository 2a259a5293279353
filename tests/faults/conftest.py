"""Fault tests run the platform on Postgres and Redis servers of their own (tests/faults/
servers.py), which they restart; the machine's shared servers are never touched. While a
module runs, this process and every process it starts point at the private servers; after
it, settings, engines and broker connections are dropped so later modules reconnect to the
session's own database and Redis."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.servers import PostgresServer, RedisServer, free_port, private_servers


def forget_connections() -> None:
    """Drop every cached setting, engine and broker connection of this process."""
    from app.config import get_settings
    from app.db import get_engine, get_sessionmaker
    from app.kit.queue import producer

    if get_engine.cache_info().currsize:
        get_engine().dispose()
    if producer.cache_info().currsize:
        producer().close()
    for cached in (get_settings, get_engine, get_sessionmaker, producer):
        cached.cache_clear()


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PostgresServer, RedisServer]]:
    """Private Postgres (migrated to head) and Redis, this process pointed at them."""
    from alembic import command

    from app.cli import alembic_config

    with private_servers() as (postgres, redis), pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", postgres.url)
        patch.setenv("REDIS_URL", redis.url())
        patch.setenv("LORAPLEX_API_PORT", str(free_port()))
        forget_connections()
        try:
            command.upgrade(alembic_config(), "head")
            yield postgres, redis
        finally:
            forget_connections()
    forget_connections()


@pytest.fixture(scope="module")
def model_available() -> None:
    from tests.worker.training_jobs import MODEL

    model_dir = Path(os.environ["LORAPLEX_MODELS_DIR"]) / MODEL
    if not (model_dir / "config.json").exists():
        pytest.skip(f"base model not found at {model_dir}")
