"""The lost-task sweep against the real Postgres and Redis broker: a job that owns no message
in the broker (none waiting in a queue, none held unacknowledged by a worker) is found, and
its task is sent again after the grace period, once; duplicate deliveries change nothing."""

import json
from collections.abc import Iterator

import pytest
import redis

from app.config import get_settings
from app.db import session_scope
from app.jobs import recovery
from app.jobs import repository as jobs_repo
from app.kit.ids import now
from app.kit.queue import producer
from tests.worker.training_jobs import events, job, queued_job
from worker.tasks.jobs import validate_job
from worker.tasks.maintenance import requeue_stale_jobs
from worker.training.launch import run_training_job

GRACE = 30


@pytest.fixture(autouse=True)
def lost_task_grace(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LORAPLEX_JOB_LOST_TASK_AFTER", str(GRACE))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def tenant_id(make_tenant) -> str:  # type: ignore[no-untyped-def]
    return str(make_tenant("lost")[0])


@pytest.fixture
def client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url)


def sweep(client: redis.Redis, at: int) -> dict[str, str]:
    with session_scope() as session:
        resent = recovery.resend_lost_tasks(session, client, at=at)
    recovery.forget_resent(client, resent)
    return resent


def queued_tasks(client: redis.Redis, queue: str) -> list[tuple[str, str]]:
    return [
        task
        for item in client.lrange(queue, 0, -1)
        if (task := recovery._task_of(json.loads(item)))
    ]


def test_a_task_waiting_in_a_queue_or_held_by_a_worker_is_in_the_broker(
    tenant_id: str, client: redis.Redis
) -> None:
    waiting = queued_job(tenant_id)
    held = queued_job(tenant_id)
    assert {(recovery.TRAIN_TASK, waiting), (recovery.TRAIN_TASK, held)} <= (
        recovery.tasks_in_broker(client)
    )
    # A consumer takes both messages without acknowledging them, as a worker running a task
    # does (tasks are acknowledged when they finish): they are then only in `unacked`.
    with producer().connection_for_read() as conn:
        queue = conn.SimpleQueue("gpu", no_ack=False)
        taken = [queue.get(timeout=5), queue.get(timeout=5)]
        assert client.llen("gpu") == 0
        in_broker = recovery.tasks_in_broker(client)
        assert (recovery.TRAIN_TASK, held) in in_broker
        assert (recovery.TRAIN_TASK, waiting) in in_broker
        # Other modules' jobs may be resent; never these.
        assert not {waiting, held} & (
            sweep(client, now()).keys() | sweep(client, now() + GRACE).keys()
        )
        for message in taken:
            message.ack()
        queue.close()
    assert (recovery.TRAIN_TASK, held) not in recovery.tasks_in_broker(client)


def test_a_job_without_its_task_gets_it_again_after_the_grace_period(
    tenant_id: str, client: redis.Redis
) -> None:
    validating = queued_job(tenant_id, status="validating_files", send=False)
    queued = queued_job(tenant_id, send=False)
    start = now()
    assert sweep(client, start) == {}  # first seen without a task: the grace period starts
    assert sweep(client, start + GRACE - 1) == {}
    resent = sweep(client, start + GRACE)
    assert resent.get(validating) == "resent" and resent.get(queued) == "resent"
    assert (recovery.VALIDATE_TASK, validating) in queued_tasks(client, "cpu")
    assert queued_tasks(client, "gpu").count((recovery.TRAIN_TASK, queued)) == 1
    for job_id, status in ((validating, "validating_files"), (queued, "queued")):
        assert job(job_id).status == status
        last = events(job_id)[-1]
        assert last.level == "warn" and "task was sent again" in last.message
        assert last.data is not None and last.data["reason"] == "task_lost"
    # The task is in the broker again: later sweeps leave the jobs alone.
    assert validating not in sweep(client, start + 10 * GRACE)
    assert queued not in sweep(client, start + 20 * GRACE)


def test_jobs_that_moved_on_or_wait_for_a_slot_are_left_alone(
    tenant_id: str, client: redis.Redis
) -> None:
    moved = queued_job(tenant_id, send=False)
    waiting_for_slot = queued_job(tenant_id, send=False)
    with session_scope() as session:
        assert jobs_repo.set_waiting_for_slot(session, waiting_for_slot, True)
    start = now()
    sweep(client, start)
    with session_scope() as session:
        assert jobs_repo.compare_and_set_status(session, moved, ["queued"], "cancelled")
    resent = sweep(client, start + GRACE)
    assert moved not in resent and waiting_for_slot not in resent
    assert all(e.data is None or e.data.get("reason") != "task_lost" for e in events(moved))


def test_the_beat_sweep_resends_lost_tasks(
    tenant_id: str, client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LORAPLEX_JOB_LOST_TASK_AFTER", "0")
    get_settings.cache_clear()
    lost = queued_job(tenant_id, send=False)
    assert lost not in requeue_stale_jobs()  # seen once
    assert requeue_stale_jobs().get(lost) == "resent"  # seen twice, the grace period is over
    assert (recovery.TRAIN_TASK, lost) in queued_tasks(client, "gpu")


def test_duplicate_deliveries_do_not_run_a_job_twice(tenant_id: str) -> None:
    """What makes resending safe: a task delivered again finds the job past its step."""
    queued = queued_job(tenant_id, send=False)
    before = events(queued)
    validate_job(queued)  # the validate task of a job already validated
    assert job(queued).status == "queued" and events(queued) == before

    running = queued_job(tenant_id, send=False)
    with session_scope() as session:
        claim = jobs_repo.claim_for_training(
            session, running, at=now(), stale_before=recovery.stale_before()
        )
    assert claim == 1
    before = events(running)
    run_training_job(running)  # a second train task while a live worker holds the job
    assert job(running).attempts == 1 and events(running) == before
