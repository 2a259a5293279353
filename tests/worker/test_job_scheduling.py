"""A tenant's running-jobs limit, against the real Postgres and Redis: jobs beyond it wait in
`queued`, and the next one's task is sent when a slot frees up."""

import json
from collections.abc import Iterator

import pytest
import redis

from app.config import get_settings
from app.db import session_scope
from app.jobs import repository as jobs_repo
from app.jobs import scheduling
from app.models import FineTuningJob
from tests.worker.training_jobs import events, job, queued_job
from worker.tasks.maintenance import requeue_stale_jobs


@pytest.fixture(autouse=True)
def one_job_at_a_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LORAPLEX_MAX_RUNNING_JOBS_PER_TENANT", "1")
    get_settings.cache_clear()
    redis.Redis.from_url(get_settings().redis_url).delete("gpu")
    yield
    get_settings.cache_clear()


@pytest.fixture
def tenant_id(make_tenant) -> str:  # type: ignore[no-untyped-def]
    return str(make_tenant("limited")[0])


def claim(job_id: str) -> int | None:
    with session_scope() as session:
        row = session.get(FineTuningJob, job_id)
        assert row is not None
        return scheduling.claim(session, row)


def queued_tasks() -> list[str]:
    client = redis.Redis.from_url(get_settings().redis_url)
    return [json.loads(m)["headers"]["argsrepr"] for m in client.lrange("gpu", 0, -1)]


def finish(job_id: str) -> None:
    with session_scope() as session:
        assert jobs_repo.compare_and_set_status(session, job_id, ["running"], "succeeded")


def test_a_job_beyond_the_limit_waits_in_queued(tenant_id: str) -> None:
    first, second = (queued_job(tenant_id, send=False) for _ in range(2))
    assert claim(first) == 1
    assert claim(second) is None
    waiting = job(second)
    assert waiting.status == "queued" and waiting.waiting_for_slot and waiting.attempts == 0
    (event,) = [e for e in events(second) if e.message.startswith("Waiting")]
    assert event.data == {"running_jobs": 1, "limit": 1}
    assert claim(second) is None  # a second look says nothing new
    assert len([e for e in events(second) if e.message.startswith("Waiting")]) == 1


def test_other_tenants_are_not_held_back(tenant_id: str, make_tenant) -> None:  # type: ignore[no-untyped-def]
    mine = queued_job(tenant_id, send=False)
    theirs = queued_job(str(make_tenant("other")[0]), send=False)
    assert claim(mine) == 1
    assert claim(theirs) == 1


def test_a_freed_slot_sends_the_oldest_waiting_job(tenant_id: str) -> None:
    first, second, third = (queued_job(tenant_id, send=False) for _ in range(3))
    claim(first)
    claim(second)
    claim(third)
    with session_scope() as session:
        assert scheduling.dispatch_waiting(session, tenant_id) == []  # no slot yet
    finish(first)
    with session_scope() as session:
        assert scheduling.dispatch_waiting(session, tenant_id) == [second]
    assert queued_tasks() == [repr([second])]
    assert not job(second).waiting_for_slot and job(third).waiting_for_slot
    assert claim(second) == 1


def test_the_periodic_sweep_catches_up_on_a_slot_freed_by_a_cancel(tenant_id: str) -> None:
    first, second = (queued_job(tenant_id, send=False) for _ in range(2))
    claim(first)
    claim(second)
    with session_scope() as session:
        jobs_repo.compare_and_set_status(session, first, ["running"], "cancelled")
    assert requeue_stale_jobs().get(second) == "dispatched"
    assert repr([second]) in queued_tasks()
