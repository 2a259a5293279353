"""Training workers advertise what they can serve: a real Celery worker process on the test
Redis, with LORAPLEX_WORKER_GPUS standing in for the GPUs this host lacks."""

import json
import os
import signal
from pathlib import Path

import pytest
from redis import Redis
from typer.testing import CliRunner

from app.cli import cli
from app.kit import workers
from tests.worker.training_jobs import gpu_worker, wait_until

pytestmark = pytest.mark.usefixtures("own_workers")


def redis() -> Redis:
    return workers.redis_client(os.environ["REDIS_URL"])


def listed() -> list[dict]:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, ["workers"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_the_registry_lists_an_entry_until_it_expires_or_is_withdrawn() -> None:
    client = redis()
    entry = {"hostname": "gpu@a", "gpus": 2, "memory_per_gpu_bytes": None, "queues": ["gpu"]}
    workers.advertise(client, entry, ttl=30)
    assert workers.live_workers(client) == [entry]
    assert 0 < client.ttl(workers.KEY_PREFIX + "gpu@a") <= 30  # a dead worker drops out
    workers.withdraw(client, "gpu@a")
    assert workers.live_workers(client) == []


def test_a_gpu_worker_consumes_and_advertises_the_queues_of_its_gpus(tmp_path: Path) -> None:
    with gpu_worker(tmp_path / "worker.log", {"LORAPLEX_WORKER_GPUS": "3"}) as process:
        entries = wait_until(listed, 120, "the worker to advertise itself")
        assert len(entries) == 1
        entry = entries[0]
        assert entry["gpus"] == 3 and entry["hostname"].startswith("gpu@")
        assert entry["queues"] == ["gpu", "gpu.2", "gpu.3"]
        assert 0 < redis().ttl(workers.KEY_PREFIX + entry["hostname"]) <= workers.TTL_SECONDS
        # A warm shutdown takes the entry away at once, not after its TTL.
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
    assert listed() == []
