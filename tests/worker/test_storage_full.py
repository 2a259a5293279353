"""Storage that fills up while a job trains: the job fails with `storage_full`, nothing half
written is registered or left behind, and the worker goes on to train the next job.

The tenant's job directories sit on a 4 MiB tmpfs (needs root to mount); the adapter of
SmolLM2-135M at r=8 is about 10 MB, so the first checkpoint or the final adapter cannot fit.
A real Celery worker process trains the jobs."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db import session_scope
from app.kit.storage import get_storage
from app.models import Adapter, File, JobCheckpoint
from tests.worker.training_jobs import gpu_worker, job, queued_job, wait_until

pytestmark = pytest.mark.usefixtures("own_workers")

TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture
def tenant_id(make_tenant) -> str:  # type: ignore[no-untyped-def]
    return str(make_tenant("full-disk")[0])


@pytest.fixture
def small_volume(tenant_id: str) -> Iterator[Path]:
    """The tenant's job directories, on a volume too small for an adapter."""
    mount = get_storage().path(f"jobs/{tenant_id}")
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def finished(job_id: str) -> bool:
    return job(job_id).status in TERMINAL


def assert_failed_for_space_and_left_nothing(job_id: str, tenant_id: str) -> None:
    failed = job(job_id)
    workdir = get_storage().path(f"jobs/{tenant_id}/{job_id}")
    log = (workdir / "train.log").read_text(errors="replace")[-3000:]
    assert failed.status == "failed", (failed.status, log)
    assert failed.error and failed.error["code"] == "storage_full", (failed.error, log)
    assert "space" in failed.error["message"]
    with session_scope() as session:
        assert session.scalars(select(Adapter).where(Adapter.job_id == job_id)).all() == []
        assert (
            session.scalars(select(JobCheckpoint).where(JobCheckpoint.job_id == job_id)).all() == []
        )
        results = select(File).where(File.filename == f"{job_id}-results.csv")
        assert session.scalars(results).all() == []
    assert not (workdir / "adapter").exists()
    leftovers = [p.name for p in workdir.rglob("*") if p.name.endswith(".partial")]
    assert leftovers == []  # the half-written directories were removed
    assert not get_storage().path(f"adapters/{tenant_id}").exists() or not any(
        get_storage().path(f"adapters/{tenant_id}").iterdir()
    )


def test_a_full_disk_fails_the_job_cleanly_and_the_worker_trains_the_next_one(
    tenant_id: str, small_volume: Path, make_tenant, tmp_path: Path
) -> None:
    at_checkpoint = queued_job(tenant_id, checkpoint_every_steps=1)
    at_adapter = queued_job(tenant_id)  # 4 steps, no checkpoint: the final adapter is first
    elsewhere = queued_job(str(make_tenant("roomy")[0]))
    with gpu_worker(tmp_path / "worker.log") as worker:
        for job_id in (at_checkpoint, at_adapter, elsewhere):
            wait_until(lambda j=job_id: finished(j), 600, f"job {job_id} to finish")
        assert worker.poll() is None  # the worker survived both failures
    assert_failed_for_space_and_left_nothing(at_checkpoint, tenant_id)
    assert_failed_for_space_and_left_nothing(at_adapter, tenant_id)
    assert job(elsewhere).status == "succeeded", job(elsewhere).error
