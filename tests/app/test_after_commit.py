"""Deferred side effects (tasks to send, blobs to delete) wait for the outermost commit of a
real Postgres transaction, and vanish with the transaction that deferred them."""

from typing import Any

import pytest
from sqlalchemy import text

from app.db import session_scope
from app.kit import after_commit

DONE: list[Any] = []


@after_commit.handler("test-effects")
def _record(items: list[Any]) -> None:
    DONE.extend(items)


@pytest.fixture(autouse=True)
def clean() -> None:
    DONE.clear()


def test_a_released_savepoint_waits_for_the_outer_commit() -> None:
    with session_scope() as session:
        session.execute(text("select 1"))
        with session.begin_nested():
            after_commit.defer(session, "test-effects", "inside")
        assert DONE == []  # the savepoint is released, but nothing is committed yet
        after_commit.defer(session, "test-effects", "outside")
    assert DONE == ["inside", "outside"]


def test_a_rolled_back_savepoint_drops_only_its_own_effects() -> None:
    with session_scope() as session:
        after_commit.defer(session, "test-effects", "before")
        with pytest.raises(RuntimeError), session.begin_nested():
            after_commit.defer(session, "test-effects", "doomed")
            raise RuntimeError("the savepoint rolls back")
        after_commit.defer(session, "test-effects", "after")
    assert DONE == ["before", "after"]


def test_an_outer_rollback_drops_everything() -> None:
    with pytest.raises(RuntimeError), session_scope() as session:
        after_commit.defer(session, "test-effects", "first")
        with session.begin_nested():
            after_commit.defer(session, "test-effects", "nested")
        raise RuntimeError("the whole transaction rolls back")
    assert DONE == []
    with session_scope() as session:  # and nothing leaks into the next transaction
        session.execute(text("select 1"))
    assert DONE == []
