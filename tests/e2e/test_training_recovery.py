"""Training jobs on real worker processes (Postgres, Redis, `celery worker -Q gpu`, the recipe
in its child process on SmolLM2-135M): a worker killed with SIGKILL mid-run comes back through
the stale-heartbeat sweep and resumes from its checkpoint; failing jobs fail with a clear error
while the worker lives on to train the next one."""

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import get_settings
from tests.worker.training_jobs import (
    MODEL,
    checkpoints,
    events,
    finished,
    gpu_worker,
    job,
    queued_job,
    results_steps,
    training_processes,
    wait_until,
)
from worker.tasks.maintenance import requeue_stale_jobs

pytestmark = pytest.mark.usefixtures("own_workers")

STALE_AFTER = 5
WORKER_ENV = {
    "LORAPLEX_JOB_HEARTBEAT_INTERVAL": "1",
    "LORAPLEX_JOB_STALE_AFTER": str(STALE_AFTER),
}


@pytest.fixture(autouse=True)
def worker_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The sweep runs in this process: it must judge staleness as the workers do."""
    for name, value in WORKER_ENV.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def tenant_id(make_tenant) -> str:  # type: ignore[no-untyped-def]
    model_dir = Path(os.environ["LORAPLEX_MODELS_DIR"]) / MODEL
    if not (model_dir / "config.json").exists():
        pytest.skip(f"base model not found at {model_dir}")
    return str(make_tenant("training")[0])


def test_a_job_whose_worker_is_killed_resumes_from_its_checkpoint(
    tenant_id: str, tmp_path: Path
) -> None:
    # 16 examples, batch 2, 2 epochs: 16 steps, a checkpoint every 3.
    job_id = queued_job(tenant_id, n_epochs=2, batch_size=2, checkpoint_every_steps=3)
    with gpu_worker(tmp_path / "worker-1.log", WORKER_ENV) as first:
        checkpoint = wait_until(
            lambda: next((c for c in checkpoints(job_id) if c.step_number >= 3), None),
            400,
            "the first checkpoint",
        )
        wait_until(
            lambda: any(
                e.type == "metrics" and e.data and e.data["step"] > checkpoint.step_number
                for e in events(job_id)
            ),
            120,
            "a step after the checkpoint",
        )
        children = training_processes(job_id)
        assert children, "the training process should be running"
        os.kill(first.pid, signal.SIGKILL)  # the worker process alone, as a crash would
        # Its pool process and the training process die with it, releasing their memory.
        wait_until(lambda: not training_processes(job_id), 30, "the training process to exit")
    last_step_before = max(e.data["step"] for e in events(job_id) if e.type == "metrics")
    latest_checkpoint = checkpoints(job_id)[-1].step_number
    assert job(job_id).status == "running"  # nothing has noticed yet

    outcome = wait_until(
        lambda: requeue_stale_jobs().get(job_id), 60, "the sweep to see a stale heartbeat"
    )
    assert outcome == "requeued" and job(job_id).status == "queued"

    with gpu_worker(tmp_path / "worker-2.log", WORKER_ENV):
        assert finished(job_id) == "succeeded", job(job_id).error
    messages = [e.message for e in events(job_id)]
    assert any("stopped sending heartbeats" in m and "requeued" in m for m in messages)
    assert any(m.startswith("Fine-tuning job restarted after an interruption") for m in messages)
    (resumed,) = [e for e in events(job_id) if e.message.startswith("Resumed from checkpoint")]
    assert resumed.data is not None
    resumed_from = resumed.data["resumed_from_step"]
    assert resumed_from >= latest_checkpoint and resumed_from <= last_step_before
    assert f"at step {resumed_from}" in resumed.message
    second_run_steps = [
        e.data["step"] for e in events(job_id) if e.type == "metrics" and e.id > resumed.id
    ]
    assert second_run_steps == list(range(resumed_from + 1, 17))
    assert results_steps(job_id) == list(range(1, 17))
    assert job(job_id).attempts == 2


def test_failing_jobs_fail_clearly_and_the_worker_takes_the_next_job(
    tenant_id: str, tmp_path: Path
) -> None:
    nan = queued_job(tenant_id, test_overrides={"fault_injection": {"nan_loss_at_step": 2}})
    oom = queued_job(tenant_id, test_overrides={"fault_injection": {"out_of_memory_at_step": 1}})
    no_model = queued_job(tenant_id, test_overrides={"base_model_path": str(tmp_path / "gone")})
    healthy = queued_job(tenant_id)
    with gpu_worker(tmp_path / "worker.log", WORKER_ENV) as worker:
        assert finished(healthy) == "succeeded", job(healthy).error
        assert worker.poll() is None  # the same worker process did all four
    expected = {
        nan: ("loss_diverged", "diverged to nan at step 2"),
        oom: ("out_of_memory", "out of memory"),
        no_model: ("base_model_unavailable", "gone"),
    }
    for job_id, (code, text) in expected.items():
        failed = job(job_id)
        assert failed.status == "failed" and failed.error is not None
        assert failed.error["code"] == code and text in failed.error["message"], failed.error
        assert failed.error["param"] is None
        last = events(job_id)[-1]
        assert last.level == "error" and last.message.startswith("Fine-tuning failed:")
        assert not training_processes(job_id)


def test_a_killed_training_process_is_resumed_by_the_same_worker(
    tenant_id: str, tmp_path: Path
) -> None:
    """The kernel's OOM killer takes the training process, not the worker: the worker sees
    the signal, requeues the job and resumes it from its checkpoint itself."""
    job_id = queued_job(tenant_id, batch_size=2, checkpoint_every_steps=2)  # 8 steps
    with gpu_worker(tmp_path / "worker.log", WORKER_ENV) as worker:
        wait_until(lambda: checkpoints(job_id), 400, "the first checkpoint")
        (child,) = wait_until(lambda: training_processes(job_id), 30, "the training process")
        os.kill(child, signal.SIGKILL)
        assert finished(job_id) == "succeeded", job(job_id).error
        assert worker.poll() is None
    messages = [e.message for e in events(job_id)]
    assert any(
        m.startswith("The training process was stopped by SIGKILL") and "requeued" in m
        for m in messages
    ), messages
    (resumed,) = [e for e in events(job_id) if e.message.startswith("Resumed from checkpoint")]
    assert resumed.data is not None and resumed.data["resumed_from_step"] >= 2
    assert results_steps(job_id) == list(range(1, 9))
    assert job(job_id).attempts == 2
