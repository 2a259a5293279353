"""Run one fine-tuning job: claim it, start the recipe in a child process, watch for cancel,
then publish the adapter or record the failure. The child process keeps the worker alive
whatever the recipe does (OOM, segfault, NaN) and lets cancel kill training outright."""

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from app.catalog.catalog import get_base_model
from app.config import get_settings
from app.db import session_scope
from app.jobs import repository as jobs_repo
from app.jobs.service import add_event
from app.kit.ids import now
from app.kit.storage import get_storage
from app.models import Adapter, File, FineTuningJob
from worker.training.publish import publish_adapter

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
# After a cancel the recipe stops at its next step; this is how long a step (or the model
# load) may take before the child is terminated instead.
CANCEL_GRACE_SECONDS = 30.0


def job_dir_key(job: FineTuningJob) -> str:
    return f"jobs/{job.tenant_id}/{job.id}"


def run_training_job(job_id: str) -> None:
    with session_scope() as session:
        job = session.get(FineTuningJob, job_id)
        if job is None or job.status not in ("queued", "running"):
            return  # cancelled, finished, or a duplicate delivery
        redelivered = job.status == "running"
        jobs_repo.compare_and_set_status(
            session, job.id, ["queued", "running"], "running", started_at=now()
        )
        add_event(
            session,
            job,
            "Fine-tuning job restarted after a worker interruption."
            if redelivered
            else "Fine-tuning job started.",
        )
        workdir = get_storage().path(job_dir_key(job))
        config = _train_config(session, job, workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(json.dumps(config, indent=2))

    returncode = _run_child(job_id, workdir)
    result_path = workdir / "result.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    if returncode == 0 and result and result["status"] == "succeeded":
        publish_adapter(job_id, workdir, result)
    elif _job_status(job_id) == "cancelled":
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        message = (result or {}).get("error") or f"training process exited with code {returncode}"
        _fail(job_id, message)


def _train_config(session, job: FineTuningJob, workdir: Path) -> dict:  # type: ignore[no-untyped-def]
    entry = get_base_model(job.model)
    if entry is None:
        raise RuntimeError(f"base model {job.model} left the catalog")
    storage = get_storage()
    training = session.get(File, job.training_file)
    validation = session.get(File, job.validation_file) if job.validation_file else None
    method = job.method["type"]
    hp = job.method[method]["hyperparameters"]
    plan = job.data_preparation or {}
    training_path = storage.path(plan.get("storage_key") or training.storage_key)
    validation_key = (plan.get("validation") or {}).get("storage_key")
    validation_path = storage.path(validation_key or validation.storage_key) if validation else None
    config = {
        "method": method,
        "base_model_id": entry.id,
        "base_model_path": str(entry.local_path),
        "training_path": str(training_path),
        "validation_path": str(validation_path) if validation_path else None,
        "output_dir": str(workdir),
        "seed": job.seed,
        "n_epochs": hp["n_epochs"],
        "batch_size": hp["batch_size"],
        "learning_rate": hp["learning_rate"],
        "lora_r": hp["lora_r"],
        "lora_alpha": hp["lora_alpha"],
        "lora_dropout": hp["lora_dropout"],
        "target_modules": hp["target_modules"],
        "max_seq_length": hp["max_seq_length"],
        "quantization": hp["quantization"],
        "dataset_sha256": training.sha256,
        "validation_sha256": validation.sha256 if validation else None,
        "data_preparation": _manifest_data(plan) if plan else None,
    }
    if method == "dpo":
        config["beta"] = hp["beta"]
    if job.parent_model:
        parent = session.get(Adapter, job.parent_adapter_id) if job.parent_adapter_id else None
        if parent is None:
            raise RuntimeError(f"the adapter of {job.parent_model} no longer exists")
        config["init_adapter_path"] = str(storage.path(parent.storage_key))
        config["init_adapter_id"] = parent.name
    return config


def _manifest_data(plan: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "drop_invalid",
        "dedup",
        "rows_in",
        "rows_kept",
        "dropped_invalid",
        "dropped_duplicates",
        "final_dataset_sha256",
    )
    return {key: plan[key] for key in keys if key in plan}


def _run_child(job_id: str, workdir: Path) -> int:
    python = get_settings().training_python or sys.executable
    with (workdir / "train.log").open("ab") as logfile:
        child = subprocess.Popen(
            [python, "-m", "worker.training.job_runner", job_id, str(workdir)],
            stdout=logfile,
            stderr=subprocess.STDOUT,
            env=_child_env(),
        )
        cancelled_at: float | None = None
        while (code := child.poll()) is None:
            time.sleep(POLL_SECONDS)
            if cancelled_at is None and _job_status(job_id) != "running":
                cancelled_at = time.monotonic()
            if cancelled_at and time.monotonic() - cancelled_at > CANCEL_GRACE_SECONDS:
                log.warning("job %s: recipe ignored cancel; terminating", job_id)
                child.terminate()
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                return child.wait()
        return code


def _child_env() -> dict[str, str]:
    # OpenMP threads that spin while waiting starve the other processes on a shared CPU host
    # (vLLM, the API): measured 3-5x slower training steps with the default policy there.
    return {"OMP_WAIT_POLICY": "PASSIVE", **os.environ}


def _job_status(job_id: str) -> str | None:
    with session_scope() as session:
        job = session.get(FineTuningJob, job_id)
        return job.status if job else None


def _fail(job_id: str, message: str) -> None:
    with session_scope() as session:
        job = session.get(FineTuningJob, job_id)
        if job is None:
            return
        error = {"code": "training_failed", "message": message, "param": None}
        if jobs_repo.compare_and_set_status(
            session, job_id, ["running"], "failed", error=error, finished_at=now()
        ):
            add_event(session, job, f"Fine-tuning failed: {message}", level="error")
