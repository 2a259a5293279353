"""Per-tenant rate limits: the settings' defaults, overridden per tenant by a `rate_limits`
row; enforced by a Redis token bucket (or an in-process one when REDIS_URL is empty)."""

from typing import Any, Protocol

from sqlalchemy.orm import Session

from app.auth import callers
from app.config import get_settings
from app.errors import LoraplexError
from app.kit.ids import now
from app.kit.metrics import RATE_LIMITED
from app.models import RateLimit
from app.ratelimits import repository
from app.ratelimits.bucket import Decision, Limits, LocalLimiter, retry_after_header


class Limiter(Protocol):
    async def admit(self, tenant_id: str, limits: Limits) -> Decision: ...

    async def debit(self, tenant_id: str, used: int, limits: Limits) -> None: ...

    async def aclose(self) -> None: ...


class RateLimited(LoraplexError):
    """OpenAI's 429: `type` names the exhausted limit ("requests" or "tokens")."""

    status_code = 429
    code = "rate_limit_exceeded"

    def __init__(self, decision: Decision, limits: Limits):
        self.type = decision.limit or "requests"
        per_minute = (
            limits.tokens_per_minute if self.type == "tokens" else limits.requests_per_minute
        )
        unit = "TPM" if self.type == "tokens" else "RPM"
        self.retry_after = retry_after_header(decision.retry_after)
        super().__init__(
            f"Rate limit reached for {self.type} per min ({unit}): Limit {per_minute}. "
            f"Please try again in {self.retry_after}s."
        )

    def headers(self) -> dict[str, str]:
        return {"Retry-After": self.retry_after}


def make_limiter(redis_url: str) -> Limiter:
    if redis_url:
        from app.ratelimits.redis_limiter import RedisLimiter

        return RedisLimiter(redis_url)
    return LocalLimiter()


def limits_for(session: Session, tenant_id: str) -> Limits:
    settings = get_settings()
    row = repository.get(session, tenant_id)
    rpm = row.requests_per_minute if row and row.requests_per_minute else None
    tpm = row.tokens_per_minute if row and row.tokens_per_minute else None
    return Limits(rpm or settings.rate_limit_rpm, tpm or settings.rate_limit_tpm)


def set_limits(
    session: Session,
    tenant_id: str,
    requests_per_minute: int | None,
    tokens_per_minute: int | None,
) -> Limits:
    """Operator action: override a tenant's limits (None restores the default)."""
    row = repository.get(session, tenant_id)
    if row is None:
        row = RateLimit(tenant_id=tenant_id)
        repository.add(session, row)
    row.requests_per_minute = requests_per_minute
    row.tokens_per_minute = tokens_per_minute
    row.updated_at = now()
    session.flush()
    callers.forget_after_commit(session)  # the serving routes cache limits for a moment
    return limits_for(session, tenant_id)


async def admit(limiter: Limiter, tenant_id: str, limits: Limits) -> Decision:
    decision = await limiter.admit(tenant_id, limits)
    if not decision.allowed:
        RATE_LIMITED.labels(decision.limit or "requests").inc()
        raise RateLimited(decision, limits)
    return decision


def headers(decision: Decision, limits: Limits) -> dict[str, Any]:
    """OpenAI's informational rate-limit headers on every served response."""
    return {
        "x-ratelimit-limit-requests": str(limits.requests_per_minute),
        "x-ratelimit-remaining-requests": str(max(0, decision.remaining_requests)),
        "x-ratelimit-limit-tokens": str(limits.tokens_per_minute),
        "x-ratelimit-remaining-tokens": str(max(0, decision.remaining_tokens)),
    }
