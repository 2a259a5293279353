"""Token buckets: the arithmetic, the in-process limiter (embedded mode), the Redis limiter
(real Redis) and the 429 the API answers."""

import asyncio
import os
import uuid

import pytest

from app.db import session_scope
from app.ratelimits import service as ratelimits
from app.ratelimits.bucket import Bucket, Limits, LocalLimiter, admit, debit, retry_after_header
from app.ratelimits.redis_limiter import RedisLimiter
from app.ratelimits.service import make_limiter

LIMITS = Limits(requests_per_minute=60, tokens_per_minute=600)


def test_a_fresh_bucket_is_full_and_each_request_takes_one():
    decision, req, tok = admit(None, None, LIMITS, now=100.0)
    assert decision.allowed and req.level == 59 and tok.level == 600


def test_requests_refill_at_capacity_per_minute():
    empty = Bucket(0.0, 100.0)
    decision, _, _ = admit(empty, None, LIMITS, now=100.5)
    assert not decision.allowed and decision.limit == "requests"
    assert decision.retry_after == pytest.approx(0.5)  # 1 request/s at 60 RPM
    decision, req, _ = admit(empty, None, LIMITS, now=101.0)
    assert decision.allowed and req.level == pytest.approx(0.0)


def test_refill_never_exceeds_capacity():
    _, req, _ = admit(Bucket(10.0, 0.0), None, LIMITS, now=10_000.0)
    assert req.level == 59


def test_tokens_are_debited_after_the_fact_and_block_while_in_debt():
    tok = debit(None, 700, LIMITS, now=0.0)
    assert tok.level == -100
    decision, _, _ = admit(None, tok, LIMITS, now=0.0)
    assert not decision.allowed and decision.limit == "tokens"
    assert decision.retry_after == pytest.approx(101 / 10)  # 10 tokens/s at 600 TPM
    decision, _, _ = admit(None, tok, LIMITS, now=10.2)
    assert decision.allowed


def test_token_debt_is_capped_at_one_minute():
    assert debit(None, 10**9, LIMITS, now=0.0).level == -600


def test_retry_after_header_is_whole_seconds_at_least_one():
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"


def test_embedded_mode_uses_the_in_process_limiter():
    assert isinstance(make_limiter(""), LocalLimiter)
    assert isinstance(make_limiter("redis://127.0.0.1:6379/13"), RedisLimiter)


def _drive(limiter, tenant: str, limits: Limits, n: int) -> list[bool]:
    async def run() -> list[bool]:
        out = [(await limiter.admit(tenant, limits)).allowed for _ in range(n)]
        await limiter.aclose()
        return out

    return asyncio.run(run())


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_limiter_admits_exactly_the_burst(kind):
    limiter = LocalLimiter() if kind == "local" else RedisLimiter(os.environ["REDIS_URL"])
    allowed = _drive(limiter, f"t-{uuid.uuid4().hex}", Limits(5, 1000), 8)
    assert allowed == [True] * 5 + [False] * 3


def test_redis_limiter_tokens_debt_refuses_with_retry_after():
    async def run():
        limiter = RedisLimiter(os.environ["REDIS_URL"])
        tenant, limits = f"t-{uuid.uuid4().hex}", Limits(100, 60)
        assert (await limiter.admit(tenant, limits)).allowed
        await limiter.debit(tenant, 90, limits)
        refused = await limiter.admit(tenant, limits)
        await limiter.aclose()
        return refused

    refused = asyncio.run(run())
    assert not refused.allowed and refused.limit == "tokens"
    assert 25 < refused.retry_after <= 31  # 31 tokens short at 1 token/s


def test_redis_limiter_fails_open_without_redis():
    limiter = RedisLimiter("redis://127.0.0.1:1/0")
    assert _drive(limiter, "t", Limits(1, 1), 3) == [True, True, True]


def test_tenant_override_beats_the_default(make_tenant):
    tenant_id, _ = make_tenant()
    with session_scope() as session:
        default = ratelimits.limits_for(session, tenant_id)
        assert default.requests_per_minute == 600
        assert ratelimits.set_limits(session, tenant_id, 7, None) == Limits(
            7, default.tokens_per_minute
        )
        assert ratelimits.set_limits(session, tenant_id, None, None) == default


def test_429_with_retry_after_and_openai_body(client, make_tenant):
    tenant_id, key = make_tenant()
    with session_scope() as session:
        ratelimits.set_limits(session, tenant_id, 2, None)
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/rate_limits", headers=headers).json()["requests_per_minute"] == 2
    body = {"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "hi"}]}
    # No vLLM runs in these tests: admitted requests answer 503, the third is refused first.
    statuses = [client.post("/v1/chat/completions", headers=headers, json=body) for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [503, 503]
    refused = statuses[2]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert refused.json()["error"]["type"] == "requests"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert "Limit 2" in refused.json()["error"]["message"]


def test_limits_are_per_tenant(client, make_tenant):
    limited, key = make_tenant()
    _, other_key = make_tenant()
    with session_scope() as session:
        ratelimits.set_limits(session, limited, 1, None)
    body = {"model": "SmolLM2-135M-Instruct", "prompt": "hi"}
    client.post("/v1/completions", headers={"Authorization": f"Bearer {key}"}, json=body)
    again = client.post("/v1/completions", headers={"Authorization": f"Bearer {key}"}, json=body)
    assert again.status_code == 429
    other = client.post(
        "/v1/completions", headers={"Authorization": f"Bearer {other_key}"}, json=body
    )
    assert other.status_code == 503  # admitted; only the engine is missing here
