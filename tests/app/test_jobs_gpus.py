"""`n_gpus` on fine-tuning jobs: recorded with the hyperparameters, range-checked, and the
queue a job's train task goes to (supervised and DPO alike)."""

import json

import pytest
import redis

from app.config import get_settings
from app.jobs.recovery import train_queue
from app.kit.queue import all_train_queues, gpu_queue, gpu_queues, memory_class
from app.models import FineTuningJob
from tests.app.test_jobs import MODEL, training_file  # noqa: F401  (fixture)
from tests.app.test_jobs_method import (  # noqa: F401  (fixtures)
    assert_error,
    create,
    dpo,
    headers,
    owner,
    pairs_file,
)


def supervised(**hyperparameters):  # type: ignore[no-untyped-def]
    return {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}


def test_a_job_trains_on_one_gpu_by_default(client, tenant, training_file):  # type: ignore[no-untyped-def]  # noqa: F811
    r = create(client, tenant, model=MODEL, training_file=training_file)
    assert r.status_code == 200, r.text
    assert r.json()["hyperparameters"]["n_gpus"] == 1


def test_n_gpus_rides_along_in_the_hyperparameters(client, tenant, training_file):  # type: ignore[no-untyped-def]  # noqa: F811
    r = create(
        client, tenant, model=MODEL, training_file=training_file, method=supervised(n_gpus=4)
    )
    assert r.status_code == 200, r.text
    assert r.json()["method"]["supervised"]["hyperparameters"]["n_gpus"] == 4


@pytest.mark.parametrize("n_gpus", [0, 9, "two"])
def test_out_of_range_n_gpus_names_the_param(client, tenant, training_file, n_gpus):  # type: ignore[no-untyped-def]  # noqa: F811
    r = create(
        client, tenant, model=MODEL, training_file=training_file, method=supervised(n_gpus=n_gpus)
    )
    assert_error(r, 400, "method.supervised.hyperparameters.n_gpus")


def test_one_gpu_jobs_go_to_the_gpu_queue_and_others_to_gpu_k() -> None:
    assert [gpu_queue(k) for k in (1, 2, 8)] == ["gpu", "gpu.2", "gpu.8"]
    with pytest.raises(ValueError):
        gpu_queue(9)


def test_a_worker_consumes_every_queue_it_has_gpus_for() -> None:
    assert gpu_queues(4) == ["gpu", "gpu.2", "gpu.3", "gpu.4"]
    assert gpu_queues(1) == ["gpu"]
    assert gpu_queues(0) == ["gpu"]  # a CPU host trains one-GPU jobs on its CPU
    assert gpu_queues(16) == [gpu_queue(k) for k in range(1, 9)]


def test_memory_classes_route_big_jobs_to_workers_with_big_gpus() -> None:
    gib = 2**30
    assert memory_class(None) is None  # unknown need: the plain queue
    assert memory_class(8 * gib) is None  # small jobs: every worker
    assert memory_class(8 * gib + 1) == 12
    assert memory_class(20 * gib) == 24
    assert memory_class(10_000 * gib) == 176  # waits for the biggest cards
    assert gpu_queue(1, 24) == "gpu.m24" and gpu_queue(2, 76) == "gpu.2.m76"
    with pytest.raises(ValueError):
        gpu_queue(1, 25)
    # An "80 GB" card (79.6 GiB by nvidia-smi) takes everything up to class 76.
    eighty = gpu_queues(1, int(79.6 * gib))
    assert eighty == ["gpu", *(f"gpu.m{c}" for c in (12, 16, 24, 32, 40, 46, 64, 76))]
    assert gpu_queues(2, 20 * gib) == [
        "gpu",
        "gpu.m12",
        "gpu.m16",
        "gpu.2",
        "gpu.2.m12",
        "gpu.2.m16",
    ]
    assert gpu_queues(1, None) == ["gpu"]  # memory unknown: plain queues only
    assert set(gpu_queues(3, 200 * gib)) <= set(all_train_queues())


def job_with(hyperparameters: dict) -> FineTuningJob:  # type: ignore[type-arg]
    return FineTuningJob(
        method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}
    )


def test_a_job_is_routed_by_its_n_gpus() -> None:
    assert train_queue(job_with({"n_gpus": 2})) == "gpu.2"
    assert train_queue(job_with({})) == "gpu"  # created before n_gpus existed


def test_a_validated_job_says_it_waits_for_a_worker_with_its_gpus(client, headers) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from tests.app.test_jobs_method import CHAT, validated_upload
    from worker.tasks.jobs import validate_job

    chat_file = validated_upload(client, headers, CHAT)
    job = create(
        client, headers, model=MODEL, training_file=chat_file, method=supervised(n_gpus=2)
    ).json()
    validate_job(job["id"])  # the cpu worker's task, run here on the same database
    queued = client.get(f"/v1/fine_tuning/jobs/{job['id']}", headers=headers).json()
    assert queued["status"] == "queued"
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", headers=headers).json()
    last = next(e for e in events["data"] if e["message"].startswith("Files validated"))
    assert "Waiting for a worker with 2 GPUs." in last["message"]
    assert last["data"]["n_gpus"] == 2 and last["data"]["queue"] == "gpu.2"
    broker = redis.Redis.from_url(get_settings().redis_url)
    sent = [json.loads(m)["headers"]["argsrepr"] for m in broker.lrange("gpu.2", 0, -1)]
    assert sent == [repr([job["id"]])]


def test_a_dpo_job_on_two_gpus_waits_for_a_two_gpu_worker(client, headers, pairs_file) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from worker.tasks.jobs import validate_job

    r = create(client, headers, model=MODEL, training_file=pairs_file, method=dpo(n_gpus=2))
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["method"]["dpo"]["hyperparameters"]["n_gpus"] == 2
    assert job["hyperparameters"]["n_gpus"] == 2
    validate_job(job["id"])  # the cpu worker's task, run here on the same database
    queued = client.get(f"/v1/fine_tuning/jobs/{job['id']}", headers=headers).json()
    assert queued["status"] == "queued"
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", headers=headers).json()
    last = next(e for e in events["data"] if e["message"].startswith("Files validated"))
    assert "Waiting for a worker with 2 GPUs." in last["message"]
    assert last["data"]["n_gpus"] == 2 and last["data"]["queue"] == "gpu.2"
    broker = redis.Redis.from_url(get_settings().redis_url)
    sent = {
        queue: [json.loads(m)["headers"]["argsrepr"] for m in broker.lrange(queue, 0, -1)]
        for queue in ("gpu", "gpu.2")
    }
    assert repr([job["id"]]) in sent["gpu.2"] and repr([job["id"]]) not in sent["gpu"]
