from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.adapters import repository, service
from app.adapters.schemas import (
    AdapterDeleted,
    AdapterExportCreate,
    AdapterExportPublic,
    AdapterPublic,
)
from app.auth.dependencies import CurrentTenant, SessionDep
from app.feedback import service as feedback
from app.feedback.schemas import DriftReport
from app.kit.pagination import ListPage

router = APIRouter(tags=["adapters"])


def _zip(filename: str, body) -> StreamingResponse:  # type: ignore[no-untyped-def]
    return StreamingResponse(
        body,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


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
    return service.retrieve(session, tenant, adapter_id)


@router.delete("/v1/adapters/{adapter_id}", response_model=AdapterDeleted)
def delete_adapter(tenant: CurrentTenant, session: SessionDep, adapter_id: str) -> AdapterDeleted:
    return AdapterDeleted(id=service.delete(session, tenant, adapter_id).id)


@router.get("/v1/adapters/{adapter_id}/content", response_class=StreamingResponse)
def download_adapter(
    tenant: CurrentTenant, session: SessionDep, adapter_id: str
) -> StreamingResponse:
    return _zip(*service.download(session, tenant, adapter_id))


@router.post("/v1/adapters/{adapter_id}/exports", response_model=AdapterExportPublic)
def create_adapter_export(
    tenant: CurrentTenant, session: SessionDep, adapter_id: str, body: AdapterExportCreate
) -> AdapterExportPublic:
    return AdapterExportPublic.of(service.create_export(session, tenant, adapter_id, body))


@router.get("/v1/adapters/{adapter_id}/exports/{export_id}", response_model=AdapterExportPublic)
def retrieve_adapter_export(
    tenant: CurrentTenant, session: SessionDep, adapter_id: str, export_id: str
) -> AdapterExportPublic:
    return AdapterExportPublic.of(service.get_export(session, tenant, adapter_id, export_id))


@router.get(
    "/v1/adapters/{adapter_id}/exports/{export_id}/content", response_class=StreamingResponse
)
def download_adapter_export(
    tenant: CurrentTenant, session: SessionDep, adapter_id: str, export_id: str
) -> StreamingResponse:
    return _zip(*service.export_content(session, tenant, adapter_id, export_id))


@router.get("/v1/adapters/{adapter_id}/drift", response_model=DriftReport)
def adapter_drift(tenant: CurrentTenant, session: SessionDep, adapter_id: str) -> DriftReport:
    return feedback.drift_report(session, tenant, adapter_id)
