"""Run one fine-tuning job: claim it, start the recipe in a child process, keep the job's
heartbeat fresh and watch for cancel, then publish the adapter or record the failure. The
child process keeps the worker alive whatever the recipe does (OOM, segfault, NaN), gives
its memory back when it exits, and lets cancel kill training outright.

A job on several GPUs (`n_gpus` > 1) runs its recipe under torchrun, one process per GPU
(worker/training/distributed.py); rank 0 reports and writes result.json.

A job that comes back (redelivered, or requeued by the stale-heartbeat sweep in
app/jobs/recovery.py) keeps its workdir: the recipe resumes from the newest checkpoint in it."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from app.catalog.catalog import get_base_model
from app.config import get_settings
from app.db import is_unavailable, retry_while_unavailable, session_scope, wait_for_database
from app.jobs import recovery, scheduling
from app.jobs import repository as jobs_repo
from app.jobs.service import add_event
from app.kit.ids import now
from app.kit.storage import get_storage
from app.models import Adapter, File, FineTuningJob, JobEvent
from worker.training.distributed import TRAINING_CUDA_ALLOC_CONF
from worker.training.errors import StorageFull, error_object
from worker.training.job_runner import PARENT_PID_ENV, die_with_parent
from worker.training.publish import publish_adapter

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
# After a cancel the recipe stops at its next step; this is how long a step (or the model
# load) may take before the child is terminated instead.
CANCEL_GRACE_SECONDS = 30.0
# Merged into the recipe config when LORAPLEX_ENV=test: how tests reach the recipe's fault
# hooks and settings that no request can set.
TEST_OVERRIDES_FILENAME = "test_overrides.json"
PER_RUN_FILES = ("result.json", "adapter", ".adapter.partial")


def job_dir_key(job: FineTuningJob) -> str:
    return f"jobs/{job.tenant_id}/{job.id}"


def run_training_job(job_id: str) -> None:
    claimed = retry_while_unavailable(lambda: _claim(job_id), "claiming the job")
    if claimed is None:
        return
    attempt, tenant_id, n_gpus, workdir, config = claimed
    _prepare_workdir(workdir, config)
    returncode = _run_child(job_id, attempt, workdir, n_gpus)
    _record_outcome(job_id, attempt, workdir, returncode)

    def dispatch() -> None:
        with session_scope() as session:
            scheduling.dispatch_waiting(session, tenant_id)

    retry_while_unavailable(dispatch, "dispatching waiting jobs")


def _claim(job_id: str) -> tuple[int, str, int, Path, dict[str, Any]] | None:
    """Claim the job and build its recipe config in one transaction: (attempt, tenant, GPUs,
    workdir, config), or None when there is nothing to train. Safe to run again after a
    failed commit: the claim is a compare-and-set."""
    with session_scope() as session:
        job = session.get(FineTuningJob, job_id)
        if job is None:
            return None
        # None: cancelled, finished, held by a live worker, a duplicate delivery, or waiting
        # for a slot of its tenant.
        attempt = scheduling.claim(session, job)
        if attempt is None:
            return None
        session.refresh(job)
        add_event(
            session,
            job,
            "Fine-tuning job started."
            if attempt == 1
            else f"Fine-tuning job restarted after an interruption (attempt {attempt}).",
            data={"attempt": attempt},
        )
        workdir = get_storage().path(job_dir_key(job))
        try:
            config = _train_config(session, job, workdir)
        except ValueError as exc:
            _fail_in(session, job, attempt, {"code": "base_model_unavailable", "message": str(exc)})
            return None
        return attempt, job.tenant_id, recovery.job_gpus(job), workdir, config


def _prepare_workdir(workdir: Path, config: dict[str, Any]) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    for name in PER_RUN_FILES:
        stale = workdir / name
        if stale.is_dir():
            shutil.rmtree(stale)
        stale.unlink(missing_ok=True)
    overrides = workdir / TEST_OVERRIDES_FILENAME
    if get_settings().environment == "test" and overrides.exists():
        config |= json.loads(overrides.read_text())
    (workdir / "config.json").write_text(json.dumps(config, indent=2))


def _record_outcome(job_id: str, attempt: int, workdir: Path, returncode: int) -> None:
    result_path = workdir / "result.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    status = retry_while_unavailable(lambda: _job_status(job_id), "reading the job's status")
    if returncode == 0 and result and result["status"] == "succeeded":
        # Publishing moves the adapter before it commits, so it is not simply run again: wait
        # for the database first. Should it still fail, the job's heartbeat stops and the
        # stale-job sweep requeues it to train again from its latest checkpoint.
        wait_for_database("publishing the adapter")
        try:
            publish_adapter(job_id, attempt, workdir, result)
        except StorageFull as exc:
            _fail(job_id, attempt, error_object(exc))
    elif status == "cancelled":
        shutil.rmtree(workdir, ignore_errors=True)
    elif result and result["status"] == "failed":
        _fail(job_id, attempt, result["error"])
    elif returncode < 0 or (result and result["status"] == "cancelled"):
        # Killed by a signal (the kernel's OOM killer, an operator) or stopped by a worker
        # shutdown while the job still wanted training: resume it from its last checkpoint.
        name = signal.Signals(-returncode).name if returncode < 0 else "a worker shutdown"
        _interrupted(job_id, attempt, f"The training process was stopped by {name}")
    else:
        generic = {"code": "training_failed", "message": f"training exited with code {returncode}"}
        _fail(job_id, attempt, _reported_error(job_id, attempt) or generic)


def _reported_error(job_id: str, attempt: int) -> dict[str, Any] | None:
    """The error the training process recorded on its failure event in this attempt, for a
    run that could not write result.json (a full disk)."""
    with session_scope() as session:
        rows = session.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id.desc())
        )
        for event in rows:
            data = event.data or {}
            if event.level == "error" and isinstance(data.get("error"), dict):
                return dict(data["error"])
            if data.get("attempt") == attempt:  # this attempt's start: nothing before counts
                return None
    return None


def _train_config(session, job: FineTuningJob, workdir: Path) -> dict:  # type: ignore[no-untyped-def]
    entry = get_base_model(job.model)
    if entry is None:
        raise ValueError(f"The base model {job.model} is no longer in the catalog.")
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
        # Jobs created before these existed have none: the recipe's defaults apply.
        **{
            key: hp[key]
            for key in (
                "checkpoint_every_steps",
                "eval_every_steps",
                "early_stopping_patience",
                "early_stopping_min_delta",
                "parallelism",
            )
            if key in hp
        },
    }
    if method == "dpo":
        config["beta"] = hp["beta"]
    else:  # preference tuning trains padded batches; jobs from before these use the defaults
        config.update({key: hp[key] for key in ("packing", "max_tokens_per_batch") if key in hp})
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


def training_command(
    python: str, job_id: str, workdir: Path, attempt: int, n_gpus: int = 1
) -> list[str]:
    runner = ["-m", "worker.training.job_runner", job_id, str(workdir), str(attempt)]
    if n_gpus == 1:
        return [python, *runner]
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n_gpus)]
    return [python, *torchrun, *runner]


def _run_child(job_id: str, attempt: int, workdir: Path, n_gpus: int = 1) -> int:
    settings = get_settings()
    python = settings.training_python or sys.executable
    with (workdir / "train.log").open("ab") as logfile:
        child = subprocess.Popen(
            training_command(python, job_id, workdir, attempt, n_gpus),
            stdout=logfile,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            # torchrun does not die with this worker by itself; its ranks die with torchrun.
            preexec_fn=die_with_parent if n_gpus > 1 else None,
        )
        cancelled_at: float | None = None
        next_heartbeat = time.monotonic() + settings.job_heartbeat_interval
        while (code := child.poll()) is None:
            time.sleep(POLL_SECONDS)
            if time.monotonic() >= next_heartbeat:
                next_heartbeat = time.monotonic() + settings.job_heartbeat_interval
                _heartbeat(job_id, attempt)
            if cancelled_at is None and not _still_ours_or_unknown(job_id, attempt):
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
    # NVLink SHARP (NVLS) needs multicast support that shared GPU hosts may not grant.
    # Expandable segments: a sharded (FSDP) run's gathers and frees of whole layers left
    # 3.4 GB of a 17 GiB budget cached but unusable, and it ran out of memory there
    # (docs/benchmarks.md, "The platform recipe on two H200s").
    return {
        "OMP_WAIT_POLICY": "PASSIVE",
        "NCCL_NVLS_ENABLE": "0",
        "PYTORCH_CUDA_ALLOC_CONF": TRAINING_CUDA_ALLOC_CONF,
        **os.environ,
        PARENT_PID_ENV: str(os.getpid()),
    }


def _heartbeat(job_id: str, attempt: int) -> None:
    try:
        with session_scope() as session:
            jobs_repo.record_heartbeat(session, job_id, attempt, now())
    except Exception:  # a database blip must not kill the run; a lasting one makes it stale
        log.exception("job %s: heartbeat not written", job_id)


def _still_ours_or_unknown(job_id: str, attempt: int) -> bool:
    """While the database is unreachable the run goes on: the recipe's own writes wait for
    it, and a cancel sent meanwhile is seen once it is back."""
    try:
        return _still_ours(job_id, attempt)
    except DBAPIError as exc:
        if not is_unavailable(exc):
            raise
        log.warning("job %s: cannot check for cancel, database unavailable", job_id)
        return True


def _still_ours(job_id: str, attempt: int) -> bool:
    with session_scope() as session:
        job = session.get(FineTuningJob, job_id)
        return job is not None and job.status == "running" and job.attempts == attempt


def _job_status(job_id: str) -> str | None:
    with session_scope() as session:
        job = session.get(FineTuningJob, job_id)
        return job.status if job else None


def _interrupted(job_id: str, attempt: int, reason: str) -> None:
    def requeue() -> None:
        with session_scope() as session:
            job = session.get(FineTuningJob, job_id)
            if job is not None:
                recovery.requeue_or_fail(
                    session, job, reason, attempt=attempt, code="training_interrupted"
                )

    retry_while_unavailable(requeue, "requeueing an interrupted job")


def _fail(job_id: str, attempt: int, error: dict[str, Any]) -> None:
    def fail() -> None:
        with session_scope() as session:
            job = session.get(FineTuningJob, job_id)
            if job is not None:
                _fail_in(session, job, attempt, error)

    retry_while_unavailable(fail, "recording the job's failure")


def _fail_in(session, job: FineTuningJob, attempt: int, error: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    error = {"code": error["code"], "message": error["message"], "param": error.get("param")}
    if jobs_repo.compare_and_set_status(
        session,
        job.id,
        ["running"],
        "failed",
        attempt=attempt,
        error=error,
        finished_at=now(),
        estimated_finish=None,
    ):
        add_event(
            session,
            job,
            f"Fine-tuning failed: {error['message']}",
            level="error",
            data={"error": error},
        )
