"""Unit tests of the replica pool's bookkeeping logic: health checks skip a dead replica and
reinstate it, a reinstated replica's residency is reconciled from its /v1/models, and with no
replica up the gateway answers a clean 503. Each replica here is an in-process HTTP handler
(httpx.MockTransport) speaking vLLM's admin contract, so the pool's decisions can be driven
step by step; the same behaviours against the real vLLM server (dead replica skipped,
restart survived, LRU eviction) are tested in tests/e2e/test_serving.py."""

import asyncio

import httpx
import pytest

from app.errors import UpstreamUnavailable
from app.inference.replicas import ReplicaPool


class StandIn:
    def __init__(self) -> None:
        self.up = True
        self.adapters: list[str] = []
        self.calls: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if not self.up:
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/health":
            return httpx.Response(200)
        if request.url.path == "/v1/models":
            data = [{"id": "base"}] + [{"id": a, "parent": "base"} for a in self.adapters]
            return httpx.Response(200, json={"data": data})
        if request.url.path == "/v1/load_lora_adapter":
            self.adapters.append(request.read().decode().split('"lora_name":"')[1].split('"')[0])
            return httpx.Response(200, text="Success")
        if request.url.path == "/v1/unload_lora_adapter":
            name = request.read().decode().split('"lora_name":"')[1].split('"')[0]
            self.adapters.remove(name)
            return httpx.Response(200, text="Success")
        return httpx.Response(404)


def pool_of(n: int, capacity: int = 2) -> tuple[ReplicaPool, list[StandIn]]:
    pool = ReplicaPool([f"http://r{i}" for i in range(n)], capacity=capacity)
    stand_ins = []
    for replica in pool.replicas:
        stand_in = StandIn()
        replica.client.http = httpx.AsyncClient(
            base_url=replica.url, transport=httpx.MockTransport(stand_in.handler)
        )
        stand_ins.append(stand_in)
    return pool, stand_ins


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_an_unhealthy_replica_is_skipped_then_reinstated_and_reconciled():
    async def scenario() -> None:
        pool, (_, b) = pool_of(2)
        b.up = False
        await pool.check_all()
        assert [r.url for r in pool.healthy()] == ["http://r0"]
        assert {(await pool.pick(f"adapter-{i}")).url for i in range(50)} == {"http://r0"}
        b.up, b.adapters = True, ["adapter-kept"]
        await pool.check_all()
        assert len(pool.healthy()) == 2
        assert pool.replicas[1].residency.lru.names() == ["adapter-kept"]
        assert {(await pool.pick(f"adapter-{i}")).url for i in range(50)} == {
            "http://r0",
            "http://r1",
        }
        await pool.aclose()

    run(scenario())


def test_no_replica_up_is_a_clean_503_after_a_fresh_probe():
    async def scenario() -> None:
        pool, stand_ins = pool_of(2)
        for s in stand_ins:
            s.up = False
        await pool.check_all()
        for s in stand_ins:
            s.calls.clear()
        with pytest.raises(UpstreamUnavailable) as err:
            await pool.pick("adapter-x")
        assert err.value.code == "inference_unavailable"
        assert all("GET /health" in s.calls for s in stand_ins)
        await pool.aclose()

    run(scenario())


def test_base_model_requests_go_to_the_least_loaded_replica():
    async def scenario() -> None:
        pool, _ = pool_of(3)
        pool.replicas[0].inflight, pool.replicas[1].inflight = 5, 1
        pool.replicas[2].inflight = 3
        assert (await pool.pick(None)).url == "http://r1"
        await pool.aclose()

    run(scenario())


def test_residency_loads_once_and_evicts_the_least_recently_used():
    async def scenario() -> None:
        pool, (engine,) = pool_of(1, capacity=2)
        residency = pool.replicas[0].residency
        await asyncio.gather(*(residency.acquire("a", "/p/a") for _ in range(5)))
        for _ in range(5):
            residency.release("a")
        assert engine.calls.count("POST /v1/load_lora_adapter") == 1
        await residency.acquire("b", "/p/b")
        residency.release("b")
        await residency.acquire("a", "/p/a")  # "a" is now the most recently used
        residency.release("a")
        await residency.acquire("c", "/p/c")
        residency.release("c")
        assert sorted(engine.adapters) == ["a", "c"] and residency.lru.names() == ["a", "c"]
        await pool.aclose()

    run(scenario())


def test_a_pinned_adapter_survives_a_load_that_would_evict_it():
    async def scenario() -> None:
        pool, (engine,) = pool_of(1, capacity=1)
        residency = pool.replicas[0].residency
        await residency.acquire("a", "/p/a")  # in flight, not released
        await residency.acquire("b", "/p/b")
        assert sorted(engine.adapters) == ["a", "b"]  # over capacity, nothing cut off
        residency.release("a")
        residency.release("b")
        await residency.acquire("b", "/p/b")  # the next use trims back to capacity
        residency.release("b")
        assert engine.adapters == ["b"]
        await residency.acquire("c", "/p/c")
        residency.release("c")
        assert engine.adapters == ["c"]
        await pool.aclose()

    run(scenario())
