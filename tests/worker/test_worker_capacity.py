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
from tests.worker.training_jobs import events, gpu_worker, job, queued_job, wait_until
from worker.tasks.jobs import validate_job

pytestmark = pytest.mark.usefixtures("own_workers")

TERMINAL = ("succeeded", "failed", "cancelled")


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


def waiting_in(queue: str) -> list[str]:
    """Job ids of the train tasks waiting in the broker's `queue`."""
    return [json.loads(m)["headers"]["argsrepr"] for m in redis().lrange(queue, 0, -1)]


def test_a_job_waits_for_a_worker_whose_gpus_have_enough_memory(
    make_tenant, tmp_path: Path
) -> None:
    """A job validated into memory class 24 GiB is left alone by a 20 GiB worker (which
    trains a small job meanwhile) and trained by a 24 GiB one."""
    tenant_id = str(make_tenant("memory")[0])
    small = queued_job(tenant_id, status="validating_files", send=False)
    # 64 x 4,096 tokens a micro-batch: ~20 GiB of activations by the estimate. The 16 short
    # rows still train in seconds on the CPU (batches are padded to their longest row).
    big = queued_job(
        tenant_id, status="validating_files", send=False, batch_size=64, max_seq_length=4096
    )
    validate_job(small)
    validate_job(big)
    need = job(big).data_preparation["gpu_memory"]["per_gpu_bytes"]
    assert 16 * 2**30 < need <= 24 * 2**30
    assert waiting_in("gpu.m24") == [repr([big])]
    assert waiting_in("gpu") == [repr([small])]
    assert any("at least 24 GiB" in e.message for e in events(big))

    twenty = {"LORAPLEX_WORKER_GPUS": "1", "LORAPLEX_WORKER_GPU_MEMORY_GB": "20"}
    with gpu_worker(tmp_path / "small.log", twenty):
        entries = wait_until(listed, 120, "the 20 GiB worker to advertise itself")
        assert entries[0]["queues"] == ["gpu", "gpu.m12", "gpu.m16"]
        assert entries[0]["memory_per_gpu_bytes"] == 20 * 2**30
        wait_until(lambda: job(small).status in TERMINAL, 600, "the small job")
        assert job(small).status == "succeeded", job(small).error
        # Not taken: its message sits in a queue this worker does not consume.
        assert job(big).status == "queued" and waiting_in("gpu.m24") == [repr([big])]

    twenty_four = {"LORAPLEX_WORKER_GPUS": "1", "LORAPLEX_WORKER_GPU_MEMORY_GB": "24"}
    with gpu_worker(tmp_path / "big.log", twenty_four):
        wait_until(lambda: job(big).status in TERMINAL, 600, "the big job")
    assert job(big).status == "succeeded", job(big).error
    assert waiting_in("gpu.m24") == []
