"""Child-process entry point: `python -m worker.training.job_runner JOB_ID WORKDIR ATTEMPT`.
Runs the recipe with a reporter that writes the job's events, metrics and checkpoints to
the database, and leaves `result.json` in WORKDIR for the parent task: on failure its
`error` is the job's error object (worker/training/errors.py).

Under torchrun (a job on several GPUs) every rank runs this; rank 0 alone writes events and
result.json."""

import ctypes
import json
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from app.db import retry_while_unavailable, session_scope
from app.jobs.service import add_event, planned_model_name
from app.kit.ids import new_id
from app.kit.storage import get_storage
from app.models import FineTuningJob, JobCheckpoint, Tenant
from worker.training.recipes import make_recipe

PARENT_PID_ENV = "LORAPLEX_TRAINING_PARENT_PID"
# torchrun sets these in each rank's environment.
RANK_ENV = "RANK"
TORCHRUN_ENV = "TORCHELASTIC_RUN_ID"


class DatabaseReporter:
    """Every write is one unit of work, retried while the database is unreachable (a restart):
    training waits for the database instead of failing."""

    def __init__(self, job_id: str, attempt: int):
        self.job_id = job_id
        self.attempt = attempt
        self.stop_requested = False
        self._started = time.monotonic()
        self._first_step: int | None = None  # past 1 when this run resumed from a checkpoint

    def _job(self, session) -> FineTuningJob:  # type: ignore[no-untyped-def]
        job = session.get(FineTuningJob, self.job_id)
        assert job is not None
        return job

    def event(self, message: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        def write() -> None:
            with session_scope() as session:
                add_event(session, self._job(session), message, level=level, data=data)

        retry_while_unavailable(write, "writing a job event")

    def metrics(self, data: dict[str, Any]) -> None:
        retry_while_unavailable(lambda: self._metrics(data), "writing job metrics")

    def _metrics(self, data: dict[str, Any]) -> None:
        step, total = int(data["step"]), int(data["total_steps"])
        message = f"Step {step}/{total}: training loss={data['train_loss']:.4f}"
        if data.get("rewards/accuracies") is not None:
            message += f", reward accuracy={data['rewards/accuracies']:.2f}"
        if data.get("valid_loss") is not None:
            message += f", validation loss={data['valid_loss']:.4f}"
        with session_scope() as session:
            job = self._job(session)
            if self._first_step is None:
                self._first_step = step
            elapsed = time.monotonic() - self._started
            steps_done = step - self._first_step + 1
            job.estimated_finish = int(time.time() + elapsed / steps_done * (total - step))
            add_event(session, job, message, type_="metrics", data=data)

    def checkpoint(self, step: int, metrics: dict[str, Any], path: str) -> None:
        retry_while_unavailable(
            lambda: self._checkpoint(step, metrics, path), "recording a checkpoint"
        )

    def _checkpoint(self, step: int, metrics: dict[str, Any], path: str) -> None:
        storage_root = get_storage().path("")
        with session_scope() as session:
            job = self._job(session)
            tenant = session.get(Tenant, job.tenant_id)
            assert tenant is not None
            # The recipe keeps only the newest checkpoints, and a resumed run may write a
            # step again: list only what is on disk, once per step.
            for row in session.scalars(
                select(JobCheckpoint).where(JobCheckpoint.job_id == job.id)
            ).all():
                if row.step_number == step or not get_storage().path(row.storage_key).is_dir():
                    session.execute(delete(JobCheckpoint).where(JobCheckpoint.id == row.id))
            session.add(
                JobCheckpoint(
                    id=new_id("ftckpt"),
                    job_id=job.id,
                    tenant_id=job.tenant_id,
                    step_number=step,
                    metrics=metrics,
                    storage_key=str(Path(path).resolve().relative_to(storage_root)),
                    fine_tuned_model_checkpoint=(
                        f"{planned_model_name(job, tenant)}:ckpt-step-{step}"
                    ),
                )
            )

    def should_stop(self) -> bool:
        if self.stop_requested:
            return True
        return retry_while_unavailable(self._not_wanted, "checking for cancel")

    def _not_wanted(self) -> bool:
        with session_scope() as session:
            job = self._job(session)
            # Cancelled, or requeued and claimed by another attempt: this run is not wanted.
            return job.status != "running" or job.attempts != self.attempt


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the worker process that started it dies, so a
    killed worker leaves no training process behind holding memory or a GPU."""
    if not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    parent = os.environ.get(PARENT_PID_ENV)
    # Under torchrun the parent is torchrun, which itself dies with the worker.
    if parent and TORCHRUN_ENV not in os.environ and os.getppid() != int(parent):
        os._exit(1)  # the worker died before the request above was made


def main(job_id: str, workdir: Path, attempt: int) -> int:
    from worker.training.errors import error_object
    from worker.training.lora import freeze_setup_objects

    die_with_parent()
    is_main = int(os.environ.get(RANK_ENV, "0")) == 0
    reporter = DatabaseReporter(job_id, attempt)
    # SIGTERM (worker shutdown) stops at the next step instead of mid-write.
    signal.signal(signal.SIGTERM, lambda *_: setattr(reporter, "stop_requested", True))
    result_path = workdir / "result.json"
    result: dict[str, Any]
    try:
        recipe = make_recipe(json.loads((workdir / "config.json").read_text()), reporter)
        recipe.setup()
        freeze_setup_objects()
        outcome = recipe.train()
        result = {
            "status": outcome.status,
            "trained_tokens": outcome.trained_tokens,
            "manifest": outcome.manifest,
            "final_loss": outcome.final_loss,
        }
    except Exception as exc:  # MemoryError and torch.OutOfMemoryError included
        traceback.print_exc()
        if not is_main:
            return 1  # torchrun stops the other ranks; rank 0 or the parent records why
        result = {"status": "failed", "error": error_object(exc, workdir)}
        remove_partial_writes(workdir)  # frees the space a write to a full disk took
        try:
            # The error rides on the event too: the parent reads it there when result.json
            # itself could not be written (a full disk).
            message = f"Training failed: {result['error']['message']}"
            reporter.event(message, level="error", data={"error": result["error"]})
        except Exception:  # the parent records the failure from result.json regardless
            traceback.print_exc()
    if is_main:
        try:
            result_path.write_text(json.dumps(result, default=str))
        except OSError:
            traceback.print_exc()
            return 1
    return 0 if result["status"] != "failed" else 1


def remove_partial_writes(workdir: Path) -> None:
    """Half-written adapter and checkpoint directories of a failed run: never read (only a
    complete one is renamed into place), but they hold the space a full disk needs back."""
    from worker.training.checkpoint import remove_partial_checkpoints
    from worker.training.recipe import ADAPTER_DIRNAME, CHECKPOINTS_DIRNAME

    shutil.rmtree(workdir / f".{ADAPTER_DIRNAME}.partial", ignore_errors=True)
    remove_partial_checkpoints(workdir / CHECKPOINTS_DIRNAME)


if __name__ == "__main__":
    from worker.training.distributed import exit_without_teardown

    exit_without_teardown(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])))
