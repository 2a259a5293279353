from fastapi import APIRouter

from app.auth.dependencies import CurrentTenant
from app.tenants.schemas import TenantPublic

router = APIRouter(tags=["tenants"])


@router.get("/v1/me", response_model=TenantPublic)
def whoami(tenant: CurrentTenant) -> TenantPublic:
    """The tenant the presented API key belongs to."""
    return TenantPublic(id=tenant.id, name=tenant.name, created_at=tenant.created_at)
