"""A job's events as server-sent events, read from the database (the recipe writes them
there): the job object on every status change, then each event, until the job is terminal."""

from collections.abc import AsyncIterator

import anyio
from sqlalchemy.orm import Session
from sse_starlette import ServerSentEvent

from app.db import session_scope
from app.jobs import repository, service
from app.jobs.schemas import TERMINAL_STATUSES, EventPublic, JobPublic
from app.models import Tenant

POLL_SECONDS = 1.0
# Event ids are time-ordered, but a row can commit after a younger one; re-reading this far
# back (and skipping ids already sent) keeps a late commit from being missed.
LOOKBACK_MS = 5000


def event_stream(
    session: Session, tenant: Tenant, job_id: str, after: str | None
) -> AsyncIterator[ServerSentEvent]:
    """Events oldest first (after `after`): one `job` event with the job object whenever its
    status changes, one unnamed event per job event; ends once the job is terminal and its
    last events are sent. An unknown or foreign job raises NotFound before streaming starts."""
    job = service.get(session, tenant, job_id)
    return _follow(tenant.id, job.id, after or "")


def _poll(tenant_id: str, job_id: str, after: str) -> tuple[JobPublic | None, list[EventPublic]]:
    with session_scope() as session:
        job, events = repository.events_since(session, tenant_id, job_id, after)
        return (JobPublic.of(job) if job else None), [EventPublic.of(e) for e in events]


def _lookback_cursor(event_id: str) -> str:
    prefix, _, rest = event_id.partition("-")
    millis = max(0, int(rest[:12], 16) - LOOKBACK_MS)
    return f"{prefix}-{millis:012x}"


async def _follow(tenant_id: str, job_id: str, after: str) -> AsyncIterator[ServerSentEvent]:
    sent: set[str] = set()
    cursor, last_status = after, None
    while True:
        job, events = await anyio.to_thread.run_sync(_poll, tenant_id, job_id, cursor)
        if job is None:  # deleted while followed
            return
        if job.status != last_status:
            last_status = job.status
            yield ServerSentEvent(data=job.model_dump_json(), event="job")
        for event in events:
            if event.id not in sent:
                sent.add(event.id)
                yield ServerSentEvent(data=event.model_dump_json(), id=event.id)
        if events:
            cursor = max(cursor, _lookback_cursor(events[-1].id))
        if job.status in TERMINAL_STATUSES:
            return
        await anyio.sleep(POLL_SECONDS)
