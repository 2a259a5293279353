"""A small asyncio load generator: closed-loop rounds (a fixed number of requests, `concurrency`
in flight at all times) and timed mixes, with per-request latency and time to first token."""

import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

ASK = [{"role": "user", "content": "Name three colours and say one thing about each."}]
SERVED_HEADER = "x-loraplex-served-model"


@dataclass
class Sample:
    kind: str
    status: int  # -1: transport failure
    latency_s: float
    ttft_s: float | None = None
    served: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


def chat_body(model: str, max_tokens: int = 16, **extra: Any) -> dict[str, Any]:
    # ignore_eos (vLLM's extension): every answer is exactly max_tokens long, so each request
    # costs the engine the same whatever the adapter makes the model say.
    return {
        "model": model,
        "messages": ASK,
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        **extra,
    }


async def post_chat(client: httpx.AsyncClient, url: str, body: dict[str, Any], kind: str) -> Sample:
    started = time.perf_counter()
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        return Sample(kind, -1, time.perf_counter() - started, error=repr(exc))
    latency = time.perf_counter() - started
    error = None if response.status_code == 200 else response.text[:300]
    return Sample(
        kind, response.status_code, latency, None, response.headers.get(SERVED_HEADER), error
    )


async def stream_chat(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], kind: str
) -> Sample:
    """Time to the first streamed content token, and to the end of the stream."""
    started = time.perf_counter()
    ttft = None
    try:
        async with client.stream("POST", url, json={**body, "stream": True}) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode(errors="replace")[:300]
                return Sample(kind, response.status_code, time.perf_counter() - started, error=text)
            async for line in response.aiter_lines():
                if ttft is None and line.startswith("data: {"):
                    chunk = json.loads(line[6:])
                    choices = chunk.get("choices") or []
                    if choices and (choices[0].get("delta") or {}).get("content"):
                        ttft = time.perf_counter() - started
            served = response.headers.get(SERVED_HEADER)
    except httpx.HTTPError as exc:
        return Sample(kind, -1, time.perf_counter() - started, error=repr(exc))
    return Sample(kind, 200, time.perf_counter() - started, ttft, served)


async def get(client: httpx.AsyncClient, url: str, kind: str) -> Sample:
    started = time.perf_counter()
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        return Sample(kind, -1, time.perf_counter() - started, error=repr(exc))
    error = None if response.status_code == 200 else response.text[:300]
    return Sample(kind, response.status_code, time.perf_counter() - started, error=error)


async def closed_loop(
    request: Callable[[int], Awaitable[Sample]], total: int, concurrency: int
) -> tuple[list[Sample], float]:
    """`total` requests, request(i) for i in 0..total-1, `concurrency` in flight at all times."""
    counter = iter(range(total))
    samples: list[Sample] = []

    async def user() -> None:
        for i in counter:
            samples.append(await request(i))

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


async def timed_loop(
    request: Callable[[int], Awaitable[Sample]],
    seconds: float,
    concurrency: int,
    stagger: float = 0.0,
) -> tuple[list[Sample], float]:
    """`concurrency` users sending back to back until `seconds` have passed (requests already
    sent are finished and counted); user k starts `k * stagger` seconds late."""
    samples: list[Sample] = []
    deadline = time.perf_counter() + seconds
    sequence = iter(range(10**9))

    async def user(k: int) -> None:
        if stagger:
            await asyncio.sleep(k * stagger)
        while time.perf_counter() < deadline:
            samples.append(await request(next(sequence)))

    started = time.perf_counter()
    await asyncio.gather(*(user(k) for k in range(concurrency)))
    return samples, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def summarize(samples: list[Sample], wall_s: float) -> dict[str, Any]:
    ok = [s for s in samples if s.ok]
    latencies = [s.latency_s for s in ok]
    return {
        "requests": len(samples),
        "failed": len(samples) - len(ok),
        "wall_s": round(wall_s, 2),
        "rps": round(len(ok) / wall_s, 3) if wall_s else None,
        "p50_ms": ms(percentile(latencies, 50)),
        "p95_ms": ms(percentile(latencies, 95)),
        "errors": sorted({f"{s.status}: {s.error}" for s in samples if not s.ok})[:5],
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
