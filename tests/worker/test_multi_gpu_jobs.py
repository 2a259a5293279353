"""Jobs on several GPUs through the real Postgres, Redis and Celery worker process: the worker
(LORAPLEX_WORKER_GPUS=2 on this CPU host, gloo) takes a 2-GPU job (supervised or DPO) from
queue gpu.2 and trains it under torchrun with two processes; a 4-GPU job that no worker can
serve stays queued."""

import json
from pathlib import Path

import pytest
import redis
from safetensors.torch import load_file

from app.config import get_settings
from app.db import session_scope
from app.jobs import recovery
from app.jobs import repository as jobs_repo
from app.kit.ids import now
from app.kit.storage import get_storage
from app.models import Adapter
from tests.worker.training_jobs import events, gpu_worker, job, queued_job, wait_until
from worker.training.launch import training_command

pytestmark = pytest.mark.usefixtures("own_workers")


@pytest.fixture
def tenant_id(make_tenant) -> str:  # type: ignore[no-untyped-def]
    return str(make_tenant("gpus")[0])


def waiting_in(queue: str) -> list[str]:
    """Job ids of the train tasks waiting in the broker's `queue`."""
    client = redis.Redis.from_url(get_settings().redis_url)
    return [json.loads(m)["headers"]["argsrepr"] for m in client.lrange(queue, 0, -1)]


def test_a_two_gpu_worker_trains_a_two_gpu_job_and_leaves_a_four_gpu_job_queued(
    tenant_id: str, tmp_path: Path
) -> None:
    too_big = queued_job(tenant_id, n_gpus=4)
    fits = queued_job(tenant_id, n_gpus=2, lora_dropout=0.0)
    assert waiting_in("gpu.4") == [repr([too_big])]
    env = {"LORAPLEX_WORKER_GPUS": "2", "GLOO_SOCKET_IFNAME": "lo"}
    with gpu_worker(tmp_path / "worker.log", env):
        wait_until(lambda: job(fits).status in ("succeeded", "failed"), 600, "the 2-GPU job")
    trained = job(fits)
    log = get_storage().path(f"jobs/{tenant_id}/{fits}/train.log")
    assert trained.status == "succeeded", (trained.error, log.read_text()[-3000:])
    with session_scope() as session:
        adapter = session.query(Adapter).filter_by(job_id=fits).one()
        manifest = adapter.manifest
    assert manifest["hyperparameters"]["n_gpus"] == 2  # the recipe saw a world of two
    messages = [e.message for e in events(fits)]
    assert sum(m.startswith("Model loaded") for m in messages) == 1  # rank 0 alone reports
    assert sum(m.startswith("Step ") for m in messages) == 4  # 16 rows in global batches of 4
    # Nobody took the 4-GPU job: it is still queued, its task still in gpu.4.
    assert job(too_big).status == "queued" and job(too_big).attempts == 0
    assert waiting_in("gpu.4") == [repr([too_big])]


def test_a_two_gpu_worker_trains_a_two_gpu_dpo_job(tenant_id: str, tmp_path: Path) -> None:
    dpo = queued_job(tenant_id, method="dpo", n_gpus=2, batch_size=5, lora_dropout=0.0)
    assert waiting_in("gpu.2") == [repr([dpo])]
    env = {"LORAPLEX_WORKER_GPUS": "2", "GLOO_SOCKET_IFNAME": "lo"}
    with gpu_worker(tmp_path / "worker.log", env):
        wait_until(lambda: job(dpo).status in ("succeeded", "failed"), 600, "the 2-GPU DPO job")
    trained = job(dpo)
    log = get_storage().path(f"jobs/{tenant_id}/{dpo}/train.log")
    assert trained.status == "succeeded", (trained.error, log.read_text()[-3000:])
    with session_scope() as session:
        manifest = session.query(Adapter).filter_by(job_id=dpo).one().manifest
    assert manifest["method"] == "dpo" and manifest["hyperparameters"]["n_gpus"] == 2
    messages = [e.message for e in events(dpo)]
    assert sum(m.startswith("Model loaded") for m in messages) == 1  # rank 0 alone reports
    # 16 pairs in global batches of 5: the last one holds a single pair, rank 1 scores none.
    assert sum(m.startswith("Step ") for m in messages) == 4


def test_a_two_gpu_worker_trains_a_sharded_job(tenant_id: str, tmp_path: Path) -> None:
    """`parallelism: "fsdp"` reaches the recipe: each rank holds half of the NF4 model, and
    the adapter is gathered from the shards into one servable adapter."""
    sharded = queued_job(tenant_id, n_gpus=2, parallelism="fsdp", lora_dropout=0.0)
    env = {"LORAPLEX_WORKER_GPUS": "2", "GLOO_SOCKET_IFNAME": "lo"}
    with gpu_worker(tmp_path / "worker.log", env):
        wait_until(lambda: job(sharded).status in ("succeeded", "failed"), 600, "the FSDP job")
    trained = job(sharded)
    log = get_storage().path(f"jobs/{tenant_id}/{sharded}/train.log")
    assert trained.status == "succeeded", (trained.error, log.read_text()[-3000:])
    with session_scope() as session:
        adapter = session.query(Adapter).filter_by(job_id=sharded).one()
        manifest, key = adapter.manifest, adapter.storage_key
    hyperparameters = manifest["hyperparameters"]
    assert hyperparameters["n_gpus"] == 2 and hyperparameters["parallelism"] == "fsdp"
    weights = load_file(get_storage().path(key) / "adapter_model.safetensors")
    assert weights and all(not name.endswith(".default.weight") for name in weights)
    assert any("lora_B" in name and t.abs().max() > 0 for name, t in weights.items())


def test_a_requeued_job_goes_back_to_the_queue_of_its_gpus(tenant_id: str) -> None:
    stale = queued_job(tenant_id, n_gpus=2, send=False)
    with session_scope() as session:
        jobs_repo.claim_for_training(session, stale, at=now() - 10_000, stale_before=0)
    with session_scope() as session:
        outcome = recovery.requeue_stale_jobs(session)
    assert outcome[stale] == "requeued"
    assert waiting_in("gpu.2") == [repr([stale])] and waiting_in("gpu") == []


def test_several_gpus_start_the_job_runner_under_torchrun() -> None:
    assert training_command("py", "ftjob-1", Path("/w"), 3, 1) == [
        "py", "-m", "worker.training.job_runner", "ftjob-1", "/w", "3",
    ]  # fmt: skip
    assert training_command("py", "ftjob-1", Path("/w"), 3, 4) == [
        "py", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
        "-m", "worker.training.job_runner", "ftjob-1", "/w", "3",
    ]  # fmt: skip
