from typing import Annotated, Any

from fastapi import APIRouter, Query
from sse_starlette import EventSourceResponse

from app.auth.dependencies import CurrentTenant, SessionDep
from app.jobs import live, repository, service
from app.jobs.schemas import CheckpointPublic, EventPublic, JobCreate, JobPublic
from app.kit.pagination import ListPage

router = APIRouter(tags=["fine-tuning"])
Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("/v1/fine_tuning/jobs", response_model=JobPublic)
def create_job(tenant: CurrentTenant, session: SessionDep, body: JobCreate) -> JobPublic:
    return JobPublic.of(service.create(session, tenant, body))


@router.get("/v1/fine_tuning/jobs", response_model=ListPage[JobPublic])
def list_jobs(
    tenant: CurrentTenant, session: SessionDep, after: str | None = None, limit: Limit = 20
) -> ListPage[JobPublic]:
    rows, has_more = repository.page(session, tenant.id, after, limit)
    return ListPage(data=[JobPublic.of(j) for j in rows], has_more=has_more)


@router.get("/v1/fine_tuning/jobs/{fine_tuning_job_id}", response_model=JobPublic)
def retrieve_job(tenant: CurrentTenant, session: SessionDep, fine_tuning_job_id: str) -> JobPublic:
    return JobPublic.of(service.get(session, tenant, fine_tuning_job_id))


@router.post("/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel", response_model=JobPublic)
def cancel_job(tenant: CurrentTenant, session: SessionDep, fine_tuning_job_id: str) -> JobPublic:
    return JobPublic.of(service.cancel(session, tenant, fine_tuning_job_id))


EVENT_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "With `stream=true`: server-sent events, oldest first. `event: job` "
        "carries the job object on every status change; unnamed events carry one job event "
        "each (`id:` is its id). The stream ends when the job is terminal.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/v1/fine_tuning/jobs/{fine_tuning_job_id}/events",
    response_model=ListPage[EventPublic],
    responses=EVENT_STREAM_DOC,
)
def list_events(
    tenant: CurrentTenant,
    session: SessionDep,
    fine_tuning_job_id: str,
    after: str | None = None,
    limit: Limit = 20,
    stream: bool = False,
) -> ListPage[EventPublic] | EventSourceResponse:
    if stream:
        return EventSourceResponse(
            live.event_stream(session, tenant, fine_tuning_job_id, after), ping=15
        )
    job = service.get(session, tenant, fine_tuning_job_id)
    rows, has_more = repository.events_page(session, tenant.id, job.id, after, limit)
    return ListPage(data=[EventPublic.of(e) for e in rows], has_more=has_more)


@router.get(
    "/v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints",
    response_model=ListPage[CheckpointPublic],
)
def list_checkpoints(
    tenant: CurrentTenant,
    session: SessionDep,
    fine_tuning_job_id: str,
    after: str | None = None,
    limit: Limit = 10,
) -> ListPage[CheckpointPublic]:
    job = service.get(session, tenant, fine_tuning_job_id)
    rows, has_more = repository.checkpoints_page(session, tenant.id, job.id, after, limit)
    return ListPage(data=[CheckpointPublic.of(c) for c in rows], has_more=has_more)
