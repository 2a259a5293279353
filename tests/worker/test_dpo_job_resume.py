"""A preference tuning (DPO) job whose training process is killed resumes from its checkpoint:
real Postgres, Redis and `celery worker -Q gpu`, the recipe in its child process on
SmolLM2-135M (nf4 on CPU)."""

import os
import signal
from pathlib import Path

import pytest

from app.kit.storage import get_storage
from tests.worker.training_jobs import (
    MODEL,
    adapters,
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

pytestmark = pytest.mark.usefixtures("own_workers")

TOTAL_STEPS = 8  # 16 preference pairs, batch 2, 1 epoch
CHECKPOINT_EVERY = 2


@pytest.fixture
def tenant_id(make_tenant) -> str:  # type: ignore[no-untyped-def]
    model_dir = Path(os.environ["LORAPLEX_MODELS_DIR"]) / MODEL
    if not (model_dir / "config.json").exists():
        pytest.skip(f"base model not found at {model_dir}")
    return str(make_tenant("dpo-resume")[0])


def test_a_killed_dpo_training_process_resumes_from_its_checkpoint(
    tenant_id: str, tmp_path: Path
) -> None:
    """The training process dies (SIGKILL, as the OOM killer would) after a checkpoint: the
    worker requeues the job and the second attempt goes on from that checkpoint."""
    job_id = queued_job(
        tenant_id, method="dpo", batch_size=2, checkpoint_every_steps=CHECKPOINT_EVERY
    )
    with gpu_worker(tmp_path / "worker.log") as worker:
        wait_until(lambda: checkpoints(job_id), 300, "the first checkpoint")
        (child,) = wait_until(lambda: training_processes(job_id), 30, "the training process")
        os.kill(child, signal.SIGKILL)
        assert finished(job_id, timeout=300) == "succeeded", job(job_id).error
        assert worker.poll() is None
    messages = [e.message for e in events(job_id)]
    assert any(
        m.startswith("The training process was stopped by SIGKILL") and "requeued" in m
        for m in messages
    ), messages
    (resumed,) = [e for e in events(job_id) if e.message.startswith("Resumed from checkpoint")]
    assert resumed.data is not None
    resumed_from = resumed.data["resumed_from_step"]
    assert resumed_from >= CHECKPOINT_EVERY and resumed_from % CHECKPOINT_EVERY == 0
    second_run_steps = [
        e.data["step"] for e in events(job_id) if e.type == "metrics" and e.id > resumed.id
    ]
    assert second_run_steps == list(range(resumed_from + 1, TOTAL_STEPS + 1))
    assert all(
        "rewards/margins" in e.data for e in events(job_id) if e.type == "metrics" and e.data
    )
    assert results_steps(job_id) == list(range(1, TOTAL_STEPS + 1))
    assert job(job_id).attempts == 2
    # The checkpoints listed are the ones kept on disk, each one adapter with its state.
    listed = checkpoints(job_id)
    assert [c.step_number for c in listed] == [4, 6, 8]
    for checkpoint in listed:
        directory = get_storage().path(checkpoint.storage_key)
        assert (directory / "adapter_model.safetensors").is_file()
        assert (directory / "trainer_state" / "optimizer.pt").is_file()
    (adapter,) = adapters(job_id)
    assert adapter.name == job(job_id).fine_tuned_model
