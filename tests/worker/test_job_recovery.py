"""Claiming, heartbeats and the stale-job sweep against the real Postgres and Redis."""

import json
from collections.abc import Iterator

import pytest
import redis

from app.config import get_settings
from app.db import session_scope
from app.jobs import recovery
from app.jobs import repository as jobs_repo
from app.kit.ids import now
from tests.worker.training_jobs import events, job, queued_job
from worker.tasks.maintenance import requeue_stale_jobs
from worker.training.launch import run_training_job

STALE_AFTER = 30


@pytest.fixture(autouse=True)
def short_staleness(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LORAPLEX_JOB_STALE_AFTER", str(STALE_AFTER))
    monkeypatch.setenv("LORAPLEX_JOB_MAX_ATTEMPTS", "2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def tenant_id(make_tenant) -> str:  # type: ignore[no-untyped-def]
    return str(make_tenant("recovery")[0])


def gpu_queue_jobs() -> list[str]:
    """Job ids of the train tasks waiting in the broker's gpu queue."""
    client = redis.Redis.from_url(get_settings().redis_url)
    return [json.loads(message)["headers"]["argsrepr"] for message in client.lrange("gpu", 0, -1)]


def claim(job_id: str, at: int) -> int | None:
    with session_scope() as session:
        return jobs_repo.claim_for_training(session, job_id, at=at, stale_before=at - STALE_AFTER)


def set_heartbeat(job_id: str, at: int) -> None:
    with session_scope() as session:
        job_row = jobs_repo.get(session, job(job_id).tenant_id, job_id)
        assert job_row is not None
        job_row.heartbeat_at = at


def test_a_queued_job_is_claimed_once(tenant_id: str) -> None:
    job_id = queued_job(tenant_id, send=False)
    assert claim(job_id, now()) == 1
    assert claim(job_id, now()) is None  # a duplicate delivery while the worker is alive
    claimed = job(job_id)
    assert claimed.status == "running" and claimed.attempts == 1 and claimed.heartbeat_at


def test_a_running_job_with_a_stale_heartbeat_is_claimed_again(tenant_id: str) -> None:
    job_id = queued_job(tenant_id, send=False)
    assert claim(job_id, now() - 100) == 1
    assert claim(job_id, now()) == 2
    with session_scope() as session:
        assert not jobs_repo.record_heartbeat(session, job_id, attempt=1, at=now())
        assert jobs_repo.record_heartbeat(session, job_id, attempt=2, at=now())


def test_a_finished_job_is_not_trained_again(tenant_id: str) -> None:
    job_id = queued_job(tenant_id, status="succeeded", send=False)
    before = events(job_id)
    run_training_job(job_id)  # a late redelivery of its task
    assert job(job_id).status == "succeeded" and job(job_id).attempts == 0
    assert events(job_id) == before


def test_the_sweep_requeues_a_job_whose_worker_went_silent(tenant_id: str) -> None:
    silent = queued_job(tenant_id, send=False)
    alive = queued_job(tenant_id, send=False)
    claim(silent, now() - 100)
    claim(alive, now())
    outcome = requeue_stale_jobs()
    assert outcome.get(silent) == "requeued" and alive not in outcome
    requeued = job(silent)
    assert requeued.status == "queued" and requeued.heartbeat_at is None
    assert job(alive).status == "running"
    last = events(silent)[-1]
    assert last.level == "warn" and "stopped sending heartbeats" in last.message
    assert "attempt 2 of 2" in last.message
    assert last.data == {"reason": "worker_lost", "attempts": 1, "max_attempts": 2}
    assert repr([silent]) in gpu_queue_jobs()


def test_the_sweep_fails_a_job_that_used_up_its_attempts(tenant_id: str) -> None:
    job_id = queued_job(tenant_id, send=False)
    claim(job_id, now() - 200)
    claim(job_id, now() - 100)  # second attempt, also gone silent
    assert requeue_stale_jobs().get(job_id) == "failed"
    failed = job(job_id)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error["code"] == "worker_lost"
    assert "gave up after 2 attempt(s)" in failed.error["message"]
    assert events(job_id)[-1].level == "error"


def test_the_sweep_leaves_a_job_whose_heartbeat_came_back(tenant_id: str) -> None:
    job_id = queued_job(tenant_id, send=False)
    claim(job_id, now() - 100)
    stale = job(job_id)
    set_heartbeat(job_id, now())  # the worker was only slow
    with session_scope() as session:
        outcome = recovery.requeue_or_fail(
            session, stale, "test", stale_before=recovery.stale_before()
        )
    assert outcome == "unchanged" and job(job_id).status == "running"


@pytest.mark.parametrize(("parent_is_alive", "expected"), [(True, 0), (False, 1)])
def test_a_training_process_does_not_outlive_its_worker(
    parent_is_alive: bool, expected: int
) -> None:
    """It asks the kernel to kill it with its parent, and exits at once when the parent is
    already gone (here: a parent pid that is not its parent)."""
    import os
    import subprocess
    import sys

    from worker.training.job_runner import PARENT_PID_ENV

    parent = os.getpid() if parent_is_alive else 1
    code = "from worker.training.job_runner import die_with_parent; die_with_parent()"
    ran = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, PARENT_PID_ENV: str(parent)}
    )
    assert ran.returncode == expected
