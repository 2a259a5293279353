"""Helpers for tests that drive training jobs through the real database, broker and worker
processes: a job row as the API and `validate_job` leave it (`queued`), and a Celery worker
started the way `loraplex up` starts it."""

import csv
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.db import session_scope
from app.jobs.recovery import TRAIN_TASK, train_queue
from app.kit import workers
from app.kit.ids import new_id
from app.kit.queue import enqueue_after_commit
from app.kit.storage import get_storage
from app.models import Adapter, File, FineTuningJob, JobCheckpoint, JobEvent
from app.stack import ROOT, worker_command

MODEL = "SmolLM2-135M-Instruct"
WORDS = (
    "apple river stone cloud tiger piano garden rocket "
    "silver lemon forest candle ocean marble window pepper"
).split()


def shout_rows() -> bytes:
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Shout."},
                {"role": "user", "content": f"Shout the word: {word}"},
                {"role": "assistant", "content": f"{word.upper()}! {word.upper()}!"},
            ]
        }
        for word in WORDS
    ]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def shout_preference_rows() -> bytes:
    """Preference rows (OpenAI's shape) that prefer the shouted word over a quiet one."""
    rows = [
        {
            "input": {
                "messages": [
                    {"role": "system", "content": "Shout."},
                    {"role": "user", "content": f"Shout the word: {word}"},
                ]
            },
            "preferred_output": [{"role": "assistant", "content": f"{word.upper()}!"}],
            "non_preferred_output": [{"role": "assistant", "content": f"{word}."}],
        }
        for word in WORDS
    ]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def hyperparameters(**overrides: Any) -> dict[str, Any]:
    return {
        "n_epochs": 1,
        "batch_size": 4,
        "learning_rate_multiplier": 1.0,
        "learning_rate": 2e-4,
        "lora_r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.05,
        "target_modules": "all-linear",
        "max_seq_length": 64,
        "quantization": "nf4",
        "checkpoint_every_steps": 50,
        "eval_every_steps": None,
        "early_stopping_patience": None,
        "early_stopping_min_delta": 0.0,
    } | overrides


def queued_job(
    tenant_id: str,
    *,
    status: str = "queued",
    test_overrides: dict[str, Any] | None = None,
    send: bool = True,
    method: str = "supervised",
    **hp: Any,
) -> str:
    """A job past file validation, its training file in storage; the train task is sent
    after commit unless `send` is false. `method="dpo"`: a preference tuning job (preference
    rows, beta 0.1, padded batches) on the base model."""
    if method == "dpo":
        dpo_defaults = {"beta": 0.1, "packing": False}
        body, resolved = shout_preference_rows(), hyperparameters(**(dpo_defaults | hp))
    else:
        body, resolved = shout_rows(), hyperparameters(**hp)
    file_id, job_id = new_id("file"), new_id("ftjob")
    key = f"files/{tenant_id}/{file_id}"
    path = get_storage().path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    with session_scope() as session:
        session.add(
            File(
                id=file_id,
                tenant_id=tenant_id,
                filename="shout.jsonl",
                purpose="fine-tune",
                bytes=len(body),
                sha256=hashlib.sha256(body).hexdigest(),
                storage_key=key,
                status="processed",
            )
        )
        job = FineTuningJob(
            id=job_id,
            tenant_id=tenant_id,
            model=MODEL,
            training_file=file_id,
            seed=1234,
            method={"type": method, method: {"hyperparameters": resolved}},
            status=status,
        )
        session.add(job)
        session.flush()
        if test_overrides:
            workdir = get_storage().path(f"jobs/{tenant_id}/{job_id}")
            workdir.mkdir(parents=True, exist_ok=True)
            (workdir / "test_overrides.json").write_text(json.dumps(test_overrides))
        if send:
            enqueue_after_commit(session, TRAIN_TASK, [job_id], train_queue(job))
    return job_id


def job(job_id: str) -> FineTuningJob:
    with session_scope() as session:
        row = session.get(FineTuningJob, job_id)
        assert row is not None
        session.expunge(row)
        return row


def events(job_id: str) -> list[JobEvent]:
    with session_scope() as session:
        rows = session.scalars(
            select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        ).all()
        session.expunge_all()
        return list(rows)


def checkpoints(job_id: str) -> list[JobCheckpoint]:
    with session_scope() as session:
        rows = session.scalars(
            select(JobCheckpoint)
            .where(JobCheckpoint.job_id == job_id)
            .order_by(JobCheckpoint.step_number)
        ).all()
        session.expunge_all()
        return list(rows)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"gave up waiting for {what} after {timeout}s")


TERMINAL = ("succeeded", "failed", "cancelled")


def finished(job_id: str, timeout: float = 600) -> str:
    """The job's terminal status, once it has one."""
    return str(
        wait_until(
            lambda: job(job_id).status if job(job_id).status in TERMINAL else None,
            timeout,
            f"job {job_id} to finish",
        )
    )


def results_steps(job_id: str) -> list[int]:
    """The steps listed in the job's results file."""
    with session_scope() as session:
        results = session.get(File, job(job_id).result_files[0])
        assert results is not None
        path = get_storage().path(results.storage_key)
    return [int(row["step"]) for row in csv.DictReader(path.open())]


def adapters(job_id: str) -> list[Adapter]:
    with session_scope() as session:
        rows = session.scalars(select(Adapter).where(Adapter.job_id == job_id)).all()
        session.expunge_all()
        return list(rows)


def training_processes(job_id: str) -> list[int]:
    """Pids of live `worker.training.job_runner` processes of this job."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if b"worker.training.job_runner" in cmdline and job_id.encode() in cmdline:
            if state != "Z":
                found.append(int(entry.name))
    return found


@contextmanager
def gpu_worker(
    log_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:  # type: ignore[type-arg]
    """A training worker process (its own process group), killed with its group on exit."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra_env or {})}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            worker_command("gpu"),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        # A killed worker cannot withdraw its registry entry; without this it would stay
        # listed for its TTL and later tests would see a worker that is gone.
        workers.withdraw(
            workers.redis_client(os.environ["REDIS_URL"]), f"gpu@{socket.gethostname()}"
        )
