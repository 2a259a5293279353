"""Two live vLLM replicas behind one gateway: each adapter is loaded on the replica its
rendezvous hash prefers, a saturated replica spills requests over to the other one, and a
replica that stops is skipped (its adapters served by the other) and reinstated when it is
back. Adapters are random LoRA weights (tests/e2e/adapters.py): routing is under test here,
not what the adapters say."""

import json
import os
import secrets
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.db import session_scope
from app.inference.routing import rendezvous_order
from app.ratelimits import service as ratelimits
from app.stack import Stack
from app.tenants.service import create_tenant
from tests.e2e.adapters import random_lora, register_copies
from tests.e2e.conftest import running_stack

ASK = [{"role": "user", "content": "Say hello."}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


URLS = [f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"]


@pytest.fixture(scope="module")
def two_replicas() -> Iterator[Stack]:
    overrides = {
        "LORAPLEX_API_PORT": str(_free_port()),
        "LORAPLEX_VLLM_URL": URLS[0],
        "LORAPLEX_VLLM_URLS": ",".join(URLS),
        "LORAPLEX_VLLM_MAX_LORAS": "8",  # more than the 6 adapters: no eviction here
        "LORAPLEX_VLLM_HEALTH_INTERVAL": "1",
        "LORAPLEX_VLLM_SPILL_INFLIGHT": "2",
        "VLLM_CPU_KVCACHE_SPACE": "1",
    }
    with running_stack(overrides) as stack:
        stack.start_vllm(URLS[1], name="vllm-2")
        stack.wait_http("vllm-2", URLS[1] + "/health", 900)
        yield stack


@pytest.fixture(scope="module")
def api(two_replicas: Stack, tmp_path_factory) -> Iterator[tuple[httpx.Client, list]]:
    with session_scope() as session:
        tenant, key = create_tenant(session, f"rep-{secrets.token_hex(3)}")
        ratelimits.set_limits(session, tenant.id, 100_000, 100_000_000)
    source = random_lora(tmp_path_factory.mktemp("lora") / "adapter")
    adapters = register_copies(tenant.id, source, 6)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=two_replicas.api_url, headers=headers, timeout=300) as client:
        yield client, adapters


def ask(client: httpx.Client, model: str) -> httpx.Response:
    body = {"model": model, "messages": ASK, "max_tokens": 2, "temperature": 0}
    return client.post("/v1/chat/completions", json=body)


def resident(url: str) -> set[str]:
    models = httpx.get(url + "/v1/models", timeout=10).json()["data"]
    return {m["id"] for m in models if m.get("parent")}


def preferred(adapter_id: str) -> str:
    return rendezvous_order(adapter_id, URLS)[0]


def test_each_adapter_is_loaded_on_its_rendezvous_replica(api):
    client, adapters = api
    for adapter in adapters:
        r = ask(client, adapter.name)
        assert r.status_code == 200, r.text
    where = {url: resident(url) for url in URLS}
    for adapter in adapters:
        home = preferred(adapter.id)
        assert adapter.id in where[home], f"{adapter.id} not on {home}"
        other = next(url for url in URLS if url != home)
        assert adapter.id not in where[other], f"{adapter.id} loaded on both replicas"
    # six adapters over two replicas: both replicas got some (the hash spreads them)
    assert all(where[url] for url in URLS)


def test_a_saturated_replica_spills_over_to_the_other(api):
    client, adapters = api
    adapter = adapters[0]
    home = preferred(adapter.id)
    other = next(url for url in URLS if url != home)
    assert adapter.id not in resident(other)
    body = {"model": adapter.name, "messages": ASK, "max_tokens": 24, "temperature": 0}
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: client.post("/v1/chat/completions", json=body), range(8)))
    assert all(r.status_code == 200 for r in codes), [r.text for r in codes if r.status_code != 200]
    assert adapter.id in resident(other)  # more than 2 in flight at home: spilled over


def test_a_stopped_replica_is_skipped_and_reinstated(two_replicas, api):
    client, adapters = api
    second = [a for a in adapters if preferred(a.id) == URLS[1]]
    assert second, "no adapter prefers the second replica"
    two_replicas.stop(["vllm-2"])

    for adapter in second:  # served by the first replica meanwhile
        r = ask(client, adapter.name)
        assert r.status_code == 200, r.text
        assert adapter.id in resident(URLS[0])

    two_replicas.start_vllm(URLS[1], name="vllm-2")
    two_replicas.wait_http("vllm-2", URLS[1] + "/health", 900)
    deadline = time.monotonic() + 60
    while second[0].id not in resident(URLS[1]):
        assert time.monotonic() < deadline, "the restarted replica never got its adapters back"
        assert ask(client, second[0].name).status_code == 200
        time.sleep(1)


def test_a_replica_killed_mid_stream_ends_the_stream_cleanly_and_the_next_request_works(
    two_replicas, api
):
    """SIGKILL, not a clean stop: the client gets an OpenAI-shaped error event instead of a
    hung or truncated stream, the request is metered, and the next request for the same
    adapter is served (by the other replica, which loads it); once the killed replica is
    restarted it loads the adapter afresh (it remembers nothing) and serves it again."""
    client, adapters = api
    adapter = next(a for a in adapters if preferred(a.id) == URLS[1])
    assert ask(client, adapter.name).status_code == 200
    assert adapter.id in resident(URLS[1])
    usage_before = client.get("/v1/usage").json()["totals"]

    body = {
        "model": adapter.name,
        "messages": ASK,
        "stream": True,
        "max_tokens": 400,
        "ignore_eos": True,  # only the kill can end this stream early
    }
    events: list[str] = []
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            events.append(line[6:])
            if len(events) == 4:
                victim = two_replicas.processes.pop("vllm-2")
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait(60)
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert error["code"] == "inference_interrupted" and error["type"] == "server_error"
    assert set(error) == {"message", "type", "param", "code"}
    assert all("choices" in json.loads(e) for e in events[:-1])  # all else were real tokens

    # The broken stream's tokens were metered (usage rode on every chunk).
    deadline = time.monotonic() + 30
    while (usage := client.get("/v1/usage").json()["totals"])["requests"] == usage_before[
        "requests"
    ]:
        assert time.monotonic() < deadline, "the broken stream was never metered"
        time.sleep(0.5)
    assert usage["completion_tokens"] > usage_before["completion_tokens"]

    # The next request works at once: the dead replica is skipped, the other one loads it.
    r = ask(client, adapter.name)
    assert r.status_code == 200, r.text
    assert adapter.id in resident(URLS[0])

    two_replicas.start_vllm(URLS[1], name="vllm-2")
    two_replicas.wait_http("vllm-2", URLS[1] + "/health", 900)
    assert adapter.id not in resident(URLS[1])  # a fresh process: nothing loaded
    deadline = time.monotonic() + 60
    while adapter.id not in resident(URLS[1]):
        assert time.monotonic() < deadline, "the restarted replica never loaded the adapter"
        assert ask(client, adapter.name).status_code == 200
        time.sleep(1)
