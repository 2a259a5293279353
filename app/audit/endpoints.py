from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import service
from app.audit.schemas import AuditEventPublic
from app.auth.dependencies import CurrentTenant, SessionDep
from app.kit.pagination import ListPage

router = APIRouter(tags=["audit"])


@router.get("/v1/audit_events", response_model=ListPage[AuditEventPublic])
def list_audit_events(
    tenant: CurrentTenant,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    action: str | None = None,
) -> ListPage[AuditEventPublic]:
    events, has_more = service.page(session, tenant.id, after, limit, action)
    data = [AuditEventPublic.of(e) for e in events]
    return ListPage(
        data=data,
        has_more=has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )
