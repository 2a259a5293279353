"""Evaluation logic is pure: no Postgres or Redis, so the suite-wide reset is overridden."""

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def platform_state() -> Iterator[None]:
    yield
