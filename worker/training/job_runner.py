"""Child-process entry point: `python -m worker.training.job_runner JOB_ID WORKDIR`.
Runs the recipe with a reporter that writes the job's events, metrics and checkpoints to
the database, and leaves `result.json` in WORKDIR for the parent task."""

import json
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from app.db import session_scope
from app.jobs.service import add_event, planned_model_name
from app.kit.ids import new_id
from app.kit.storage import get_storage
from app.models import FineTuningJob, JobCheckpoint, Tenant
from worker.training.recipes import make_recipe


class DatabaseReporter:
    def __init__(self, job_id: str):
        self.job_id = job_id
        self.stop_requested = False
        self._started = time.monotonic()

    def _job(self, session) -> FineTuningJob:  # type: ignore[no-untyped-def]
        job = session.get(FineTuningJob, self.job_id)
        assert job is not None
        return job

    def event(self, message: str, level: str = "info", data: dict[str, Any] | None = None) -> None:
        with session_scope() as session:
            add_event(session, self._job(session), message, level=level, data=data)

    def metrics(self, data: dict[str, Any]) -> None:
        step, total = int(data["step"]), int(data["total_steps"])
        message = f"Step {step}/{total}: training loss={data['train_loss']:.4f}"
        if data.get("rewards/accuracies") is not None:
            message += f", reward accuracy={data['rewards/accuracies']:.2f}"
        if data.get("valid_loss") is not None:
            message += f", validation loss={data['valid_loss']:.4f}"
        with session_scope() as session:
            job = self._job(session)
            elapsed = time.monotonic() - self._started
            job.estimated_finish = int(time.time() + elapsed / step * (total - step))
            add_event(session, job, message, type_="metrics", data=data)

    def checkpoint(self, step: int, metrics: dict[str, Any], path: str) -> None:
        storage_root = get_storage().path("")
        with session_scope() as session:
            job = self._job(session)
            tenant = session.get(Tenant, job.tenant_id)
            assert tenant is not None
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
        with session_scope() as session:
            return self._job(session).status != "running"


def main(job_id: str, workdir: Path) -> int:
    reporter = DatabaseReporter(job_id)
    # SIGTERM (worker shutdown) stops at the next step instead of mid-write.
    signal.signal(signal.SIGTERM, lambda *_: setattr(reporter, "stop_requested", True))
    result_path = workdir / "result.json"
    result: dict[str, Any]
    try:
        recipe = make_recipe(json.loads((workdir / "config.json").read_text()), reporter)
        recipe.setup()
        outcome = recipe.train()
        result = {
            "status": outcome.status,
            "trained_tokens": outcome.trained_tokens,
            "manifest": outcome.manifest,
            "final_loss": outcome.final_loss,
        }
    except Exception as exc:
        traceback.print_exc()
        result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    result_path.write_text(json.dumps(result, default=str))
    return 0 if result["status"] != "failed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
