from typing import Annotated

from fastapi import APIRouter, Query

from app.adapters import repository, service
from app.adapters.schemas import AdapterPublic
from app.auth.dependencies import CurrentTenant, SessionDep
from app.feedback import service as feedback
from app.feedback.schemas import DriftReport
from app.kit.pagination import ListPage

router = APIRouter(tags=["adapters"])


@router.get("/v1/adapters", response_model=ListPage[AdapterPublic])
def list_adapters(
    tenant: CurrentTenant,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ListPage[AdapterPublic]:
    rows, has_more = repository.page(session, tenant.id, after, limit)
    data = [AdapterPublic.of(a) for a in rows]
    return ListPage(
        data=data,
        has_more=has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )


@router.get("/v1/adapters/{adapter_id}", response_model=AdapterPublic)
def retrieve_adapter(tenant: CurrentTenant, session: SessionDep, adapter_id: str) -> AdapterPublic:
    return AdapterPublic.of(service.get(session, tenant.id, adapter_id))


@router.get("/v1/adapters/{adapter_id}/drift", response_model=DriftReport)
def adapter_drift(tenant: CurrentTenant, session: SessionDep, adapter_id: str) -> DriftReport:
    return feedback.drift_report(session, tenant, adapter_id)
