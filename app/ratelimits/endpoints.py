from fastapi import APIRouter

from app.auth.dependencies import CurrentTenant, SessionDep
from app.ratelimits import service
from app.ratelimits.schemas import RateLimitsPublic

router = APIRouter(tags=["rate limits"])


@router.get("/v1/rate_limits", response_model=RateLimitsPublic)
def get_rate_limits(tenant: CurrentTenant, session: SessionDep) -> RateLimitsPublic:
    limits = service.limits_for(session, tenant.id)
    return RateLimitsPublic(
        requests_per_minute=limits.requests_per_minute, tokens_per_minute=limits.tokens_per_minute
    )
