"""Turn a finished training run into a servable adapter version, atomically: the adapter row,
the results file and the job's `succeeded` state commit together or not at all."""

import csv
import hashlib
import io
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.db import session_scope
from app.errors import LoraplexError
from app.jobs import repository as jobs_repo
from app.jobs.service import add_event, planned_model_name
from app.kit.ids import new_id, now
from app.kit.storage import get_storage
from app.models import Adapter, File, FineTuningJob, JobEvent, Tenant
from worker.training.errors import StorageFull, out_of_space

RESULT_COLUMNS = ("step", "train_loss", "valid_loss", "learning_rate", "tokens_per_second")


def publish_adapter(job_id: str, attempt: int, workdir: Path, result: dict[str, Any]) -> None:
    storage = get_storage()
    with session_scope() as session:
        job = session.get(FineTuningJob, job_id)
        if job is None or job.status != "running":
            return
        tenant = session.get(Tenant, job.tenant_id)
        assert tenant is not None
        adapter_id = new_id("adapter")
        adapter_key = f"adapters/{job.tenant_id}/{adapter_id}"
        adapter_dir = storage.path(adapter_key)
        try:
            adapter_dir.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(workdir / "adapter"), adapter_dir)
            results = _results_file(session, job)
        except OSError as exc:
            storage.delete(adapter_key)  # a copy across volumes may have stopped half-way
            if not out_of_space(exc, adapter_dir.parent):
                raise
            raise StorageFull(
                f"Storage ran out of space while the trained adapter was saved ({exc}); "
                "nothing was registered. Free some space and create the job again."
            ) from exc
        name = planned_model_name(job, tenant)
        session.add(
            Adapter(
                id=adapter_id,
                tenant_id=job.tenant_id,
                job_id=job.id,
                name=name,
                base_model=job.model,
                storage_key=adapter_key,
                manifest=result["manifest"],
            )
        )
        session.add(results)
        won = jobs_repo.compare_and_set_status(
            session,
            job.id,
            ["running"],
            "succeeded",
            attempt=attempt,
            fine_tuned_model=name,
            trained_tokens=result["trained_tokens"],
            finished_at=now(),
            result_files=[results.id],
            estimated_finish=None,
            heartbeat_at=None,
        )
        if not won:  # cancelled (or taken over) in the last instant: keep nothing
            session.rollback()
            storage.delete(adapter_key)
            storage.delete(results.storage_key)
            return
        add_event(session, job, f"New fine-tuned model created: {name}")
        add_event(session, job, "The job has successfully completed.")
    request_decision_report(job_id)


def request_decision_report(job_id: str) -> None:
    """Queue the decision report the job was created with, now that its adapter exists. A
    report that cannot be queued (an eval file deleted meanwhile) leaves the job succeeded and
    says why in an event."""
    from app.evals import service as evals
    from app.evals.schemas import DecisionReportCreate

    with session_scope() as session:
        job = session.get(FineTuningJob, job_id)
        if job is None or job.status != "succeeded" or not job.decision_report_request:
            return
        tenant = session.get(Tenant, job.tenant_id)
        assert tenant is not None
        body = DecisionReportCreate(**job.decision_report_request)
        try:
            with session.begin_nested():
                report = evals.create_report(session, tenant, job.id, body)
        except LoraplexError as exc:
            add_event(
                session,
                job,
                f"The decision report could not be started: {exc.message}",
                level="warn",
            )
            return
        add_event(
            session,
            job,
            f"Decision report {report.id} started: base + prompt against the fine-tune on "
            f"{len(body.eval_files)} eval file(s).",
            data={"decision_report_id": report.id},
        )


def _results_file(session, job: FineTuningJob) -> File:  # type: ignore[no-untyped-def]
    """OpenAI-style step metrics CSV, stored as a file of purpose `fine-tune-results`. A
    resumed run reports the steps after its checkpoint again: the latest report of a step wins."""
    events = session.scalars(
        select(JobEvent)
        .where(JobEvent.job_id == job.id, JobEvent.type == "metrics")
        .order_by(JobEvent.id)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RESULT_COLUMNS)
    by_step = {(event.data or {}).get("step"): event.data or {} for event in events}
    for step in sorted(s for s in by_step if s is not None):
        writer.writerow([by_step[step].get(c, "") for c in RESULT_COLUMNS])
    body = buffer.getvalue().encode()
    file_id = new_id("file")
    key = f"files/{job.tenant_id}/{file_id}"
    path = get_storage().path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.write_bytes(body)
    except OSError:
        path.unlink(missing_ok=True)
        raise
    return File(
        id=file_id,
        tenant_id=job.tenant_id,
        filename=f"{job.id}-results.csv",
        purpose="fine-tune-results",
        bytes=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
        storage_key=key,
        status="processed",
    )
