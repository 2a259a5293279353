"""Token-bucket arithmetic, shared by the in-process limiter and (mirrored in Lua) the Redis
one. Two buckets per tenant, both refilling continuously over a minute:

- requests: capacity = requests per minute; each request takes 1.
- tokens: capacity = tokens per minute; a request is admitted while the bucket is not in
  debt, and its real token count (known only once vLLM answers) is taken afterwards, so the
  bucket can go negative — the next requests then wait until it has refilled. The debt is
  capped at one minute's worth so no single request can block a tenant for longer than that.
"""

import math
import time
from dataclasses import dataclass


@dataclass
class Bucket:
    level: float
    updated: float


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int
    tokens_per_minute: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: str | None = None  # "requests" | "tokens" when refused
    retry_after: float = 0.0
    remaining_requests: int = 0
    remaining_tokens: int = 0


def refilled(bucket: Bucket | None, capacity: float, now: float) -> Bucket:
    if bucket is None:
        return Bucket(capacity, now)
    rate = capacity / 60.0
    level = min(capacity, bucket.level + max(0.0, now - bucket.updated) * rate)
    return Bucket(level, now)


def seconds_until(level: float, needed: float, capacity: float) -> float:
    """How long a bucket at `level` takes to reach `needed`."""
    if level >= needed:
        return 0.0
    return (needed - level) / (capacity / 60.0)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def admit(
    requests: Bucket | None, tokens: Bucket | None, limits: Limits, now: float
) -> tuple[Decision, Bucket, Bucket]:
    req = refilled(requests, limits.requests_per_minute, now)
    tok = refilled(tokens, limits.tokens_per_minute, now)
    if tok.level <= 0:
        wait = seconds_until(tok.level, 1.0, limits.tokens_per_minute)
        return Decision(False, "tokens", wait, int(req.level), int(tok.level)), req, tok
    if req.level < 1:
        wait = seconds_until(req.level, 1.0, limits.requests_per_minute)
        return Decision(False, "requests", wait, 0, int(tok.level)), req, tok
    req.level -= 1
    return Decision(True, None, 0.0, int(req.level), int(tok.level)), req, tok


def debit(tokens: Bucket | None, used: int, limits: Limits, now: float) -> Bucket:
    tok = refilled(tokens, limits.tokens_per_minute, now)
    tok.level = max(-float(limits.tokens_per_minute), tok.level - used)
    return tok


class LocalLimiter:
    """In-process buckets for the embedded mode (no Redis): exact for one API process."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], Bucket] = {}

    async def admit(self, tenant_id: str, limits: Limits) -> Decision:
        now = time.monotonic()
        decision, req, tok = admit(
            self._buckets.get((tenant_id, "requests")),
            self._buckets.get((tenant_id, "tokens")),
            limits,
            now,
        )
        self._buckets[(tenant_id, "requests")] = req
        self._buckets[(tenant_id, "tokens")] = tok
        return decision

    async def debit(self, tenant_id: str, used: int, limits: Limits) -> None:
        key = (tenant_id, "tokens")
        self._buckets[key] = debit(self._buckets.get(key), used, limits, time.monotonic())

    async def aclose(self) -> None:
        return None
