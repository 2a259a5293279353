"""Which queued training job a worker may take: each tenant has at most
`max_running_jobs_per_tenant` jobs running. A job beyond the limit stays `queued` and is
marked waiting (its task is consumed); when one of the tenant's jobs stops running, the
oldest waiting job's task is sent again."""

from sqlalchemy.orm import Session

from app.config import get_settings
from app.jobs import recovery, repository
from app.jobs.service import add_event
from app.kit.ids import now
from app.kit.queue import enqueue_after_commit
from app.models import FineTuningJob


def claim(session: Session, job: FineTuningJob) -> int | None:
    """The attempt number if this worker now holds the job, else None (finished, cancelled,
    held by a live worker, or waiting for one of its tenant's slots)."""
    limit = get_settings().max_running_jobs_per_tenant
    if limit and job.status == "queued":
        repository.lock_tenant_jobs(session, job.tenant_id)
        running = repository.count_running(session, job.tenant_id)
        if running >= limit:
            if repository.set_waiting_for_slot(session, job.id, True):
                add_event(
                    session,
                    job,
                    f"Waiting: {running} of this organization's fine-tuning jobs are running, "
                    f"the most allowed at once.",
                    data={"running_jobs": running, "limit": limit},
                )
            return None
    return repository.claim_for_training(
        session, job.id, at=now(), stale_before=recovery.stale_before()
    )


def dispatch_waiting(session: Session, tenant_id: str) -> list[str]:
    """Send the train task of the tenant's oldest waiting jobs, one per free slot."""
    limit = get_settings().max_running_jobs_per_tenant
    free = None if not limit else limit - repository.count_running(session, tenant_id)
    if free is not None and free <= 0:
        return []
    sent = []
    for job in repository.waiting_jobs(session, tenant_id, free):
        if repository.set_waiting_for_slot(session, job.id, False):
            enqueue_after_commit(session, recovery.TRAIN_TASK, [job.id], recovery.train_queue(job))
            sent.append(job.id)
    return sent


def dispatch_all_waiting(session: Session) -> list[str]:
    """The periodic catch-up: a slot freed by a cancel or a requeue sends nothing by itself."""
    sent = []
    for tenant_id in repository.tenants_with_waiting_jobs(session):
        sent += dispatch_waiting(session, tenant_id)
    return sent
