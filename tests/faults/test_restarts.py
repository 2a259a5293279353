"""Restarting Postgres and Redis under a running platform: a CPU worker, a training worker,
beat and the API (as `loraplex up` starts them) on servers of the test's own, one job
training and one queued behind it. Both jobs must finish `succeeded` with exactly what a
single clean run writes: one adapter, one start, each training step once."""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import get_settings
from app.jobs import recovery
from app.kit.queue import producer
from app.kit.storage import get_storage
from app.kit.workers import redis_client
from app.stack import Stack
from tests.faults.servers import PostgresServer, RedisServer
from tests.worker.training_jobs import (
    adapters,
    checkpoints,
    events,
    finished,
    job,
    queued_job,
    results_steps,
    wait_until,
)

# 16 examples, batch 2, one epoch: 8 steps, a checkpoint at steps 4 and 8.
SMALL_JOB = {"batch_size": 2, "checkpoint_every_steps": 4}
STEPS = 8
PLATFORM_ENV = {
    "LORAPLEX_JOB_HEARTBEAT_INTERVAL": "1",
    # Longer than the outages below: a job that rides one out is never judged stale.
    "LORAPLEX_JOB_STALE_AFTER": "60",
    "LORAPLEX_JOB_REAPER_INTERVAL": "2",
    "LORAPLEX_JOB_LOST_TASK_AFTER": "4",
    "OMP_NUM_THREADS": "1",
}
# How long Postgres stays down: long enough that training steps meet the outage.
OUTAGE_SECONDS = 6


@pytest.fixture(scope="module")
def platform(
    servers: tuple[PostgresServer, RedisServer],
    model_available: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Workers, beat and the API on the private servers; logs in the stack's own folder."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in PLATFORM_ENV.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        settings = get_settings().model_copy(update={"data_dir": tmp_path_factory.mktemp("stack")})
        stack = Stack(settings, env=dict(os.environ))
        try:
            stack.start_workers()
            stack.start_api()
            stack.wait_ready()
            yield stack
        finally:
            stack.stop()
            for log in sorted(stack.log_dir.glob("*.log")):  # for a failing run's report
                print(f"--- {log.name} (last lines)\n" + "\n".join(_tail(log, 40)))
    get_settings.cache_clear()


def _tail(path: Path, lines: int) -> list[str]:
    return path.read_text(errors="replace").splitlines()[-lines:]


def metrics_steps(job_id: str) -> list[int]:
    return [e.data["step"] for e in events(job_id) if e.type == "metrics" and e.data]


def train_log(job_id: str) -> str:
    workdir = get_storage().path(f"jobs/{job(job_id).tenant_id}/{job_id}")
    return (workdir / "train.log").read_text(errors="replace")


def assert_trained_once(job_id: str) -> None:
    """Exactly what one uninterrupted run leaves: succeeded on its first attempt, one
    adapter, one start event, each step's metrics once, one checkpoint row per step."""
    done = job(job_id)
    assert done.status == "succeeded" and done.error is None, done.error
    assert done.attempts == 1
    (adapter,) = adapters(job_id)
    assert adapter.name == done.fine_tuned_model
    messages = [e.message for e in events(job_id)]
    assert messages.count("Fine-tuning job started.") == 1
    assert not [m for m in messages if "restarted after an interruption" in m]
    assert not [e for e in events(job_id) if e.level == "error"]
    assert metrics_steps(job_id) == list(range(1, STEPS + 1))
    assert results_steps(job_id) == list(range(1, STEPS + 1))
    steps = [c.step_number for c in checkpoints(job_id)]
    assert steps and len(steps) == len(set(steps))


def test_a_postgres_restart_pauses_training_and_loses_nothing(
    platform: Stack, servers: tuple[PostgresServer, RedisServer], make_tenant
) -> None:  # type: ignore[no-untyped-def]
    postgres, _ = servers
    tenant_id, key = make_tenant("pg-restart")
    training = queued_job(tenant_id, **SMALL_JOB)
    waiting = queued_job(tenant_id, **SMALL_JOB)
    wait_until(lambda: metrics_steps(training), 300, "the first training step")
    assert job(waiting).status == "queued"
    url = f"{platform.api_url}/v1/fine_tuning/jobs/{training}"
    headers = {"Authorization": f"Bearer {key}"}

    postgres.stop()
    try:
        during = httpx.get(url, headers=headers, timeout=30)
        time.sleep(OUTAGE_SECONDS)  # training reaches steps that must write to the database
    finally:
        postgres.start()

    assert during.status_code == 503
    assert during.json() == {
        "error": {
            "message": "The service is temporarily unavailable (its database cannot be "
            "reached). Nothing was changed; retry shortly.",
            "type": "server_error",
            "param": None,
            "code": "service_unavailable",
        }
    }
    after = wait_until(
        lambda: (r := httpx.get(url, headers=headers, timeout=30)).status_code == 200 and r,
        30,
        "the API to answer again",
    )
    assert after.json()["id"] == training
    assert finished(training, 300) == "succeeded", job(training).error
    assert finished(waiting, 300) == "succeeded", job(waiting).error
    # The training process met the outage, waited for the database and went on.
    assert "database unavailable while" in train_log(training)
    for job_id in (training, waiting):
        assert_trained_once(job_id)
    for name in ("worker-cpu", "worker-gpu", "beat", "api"):
        assert platform.processes[name].poll() is None, f"{name} exited"


def test_a_redis_restart_loses_the_queued_task_and_the_sweep_sends_it_again(
    platform: Stack, servers: tuple[PostgresServer, RedisServer], make_tenant
) -> None:  # type: ignore[no-untyped-def]
    _, redis = servers
    tenant_id, _ = make_tenant("redis-restart")
    client = redis_client(redis.url())
    training = queued_job(tenant_id, **SMALL_JOB)
    wait_until(lambda: metrics_steps(training), 300, "the first training step")
    waiting = queued_job(tenant_id, **SMALL_JOB)
    assert (recovery.TRAIN_TASK, waiting) in recovery.tasks_in_broker(client)

    redis.stop()
    redis.start()  # nothing persisted: every queue and unacknowledged message is gone
    assert recovery.tasks_in_broker(client) == set()

    # The workers reconnect by themselves and declare their queues again.
    wait_until(lambda: client.exists("_kombu.binding.gpu"), 60, "the workers to reconnect")
    # A second delivery of the running job's task (as a redelivery would be) must not train
    # it twice.
    producer().send_task(recovery.TRAIN_TASK, args=[training], queue="gpu")

    assert finished(training, 300) == "succeeded", job(training).error
    assert finished(waiting, 300) == "succeeded", job(waiting).error
    wait_until(
        lambda: (recovery.TRAIN_TASK, training) not in recovery.tasks_in_broker(client),
        60,
        "the second delivery to be consumed",
    )
    for job_id in (training, waiting):
        assert_trained_once(job_id)
    lost = [e for e in events(waiting) if e.data and e.data.get("reason") == recovery.TASK_LOST]
    assert len(lost) == 1 and lost[0].level == "warn"
    assert "after a Redis restart" in lost[0].message
    assert not [e for e in events(training) if e.data and e.data.get("reason") == "task_lost"]
    for name in ("worker-cpu", "worker-gpu", "beat", "api"):
        assert platform.processes[name].poll() is None, f"{name} exited"
