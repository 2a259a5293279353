"""retry_while_unavailable: which database errors a worker waits out and which it does not."""

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from app.db import is_unavailable, retry_while_unavailable


def unreachable() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


def test_work_is_run_again_until_the_database_is_back() -> None:
    calls = []

    def work() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise unreachable()
        return "done"

    assert retry_while_unavailable(work, "testing", grace=10) == "done"
    assert len(calls) == 3


def test_an_error_of_the_statement_itself_is_not_retried() -> None:
    calls = []

    def work() -> None:
        calls.append(1)
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(IntegrityError):
        retry_while_unavailable(work, "testing", grace=10)
    assert len(calls) == 1


def test_an_outage_longer_than_the_grace_period_is_raised() -> None:
    calls = []

    def work() -> None:
        calls.append(1)
        raise unreachable()

    with pytest.raises(OperationalError):
        retry_while_unavailable(work, "testing", grace=0.1)
    assert len(calls) == 1  # the first wait would already pass the grace period


def test_unavailable_means_unreachable_or_dropped() -> None:
    assert is_unavailable(unreachable())
    assert not is_unavailable(IntegrityError("INSERT", {}, Exception("duplicate key")))
    dropped = IntegrityError("SELECT", {}, Exception("x"), connection_invalidated=True)
    assert is_unavailable(dropped)
