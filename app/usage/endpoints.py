from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.auth.dependencies import CurrentTenant, SessionDep
from app.config import get_settings
from app.errors import NotFound
from app.usage import service
from app.usage.schemas import UsagePage

router = APIRouter(tags=["usage"])


async def flush_pending(request: Request) -> None:
    """Read-your-writes within this API process: write its pending batches before reading."""
    flusher = getattr(request.app.state, "flusher", None)
    if flusher is not None:
        await flusher.flush_now()


Flushed = Annotated[None, Depends(flush_pending)]


@router.get("/v1/usage", response_model=UsagePage)
def get_usage(
    _: Flushed,  # first: it must commit before this request's session takes its snapshot
    tenant: CurrentTenant,
    session: SessionDep,
    start_date: date | None = None,
    end_date: date | None = None,
    model: str | None = None,
) -> UsagePage:
    return service.report(session, tenant, start_date, end_date, model)


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    if not get_settings().metrics_enabled:
        raise NotFound("Metrics are disabled.", code="unknown_url")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
