"""The load generator's bookkeeping: exactly `total` requests, never more than `concurrency`
in flight, and summaries computed from what actually happened."""

import asyncio

from bench.serving import loadgen
from bench.serving.loadgen import Sample, closed_loop, percentile, summarize, timed_loop


def test_closed_loop_sends_each_request_once_with_bounded_concurrency():
    inflight, peak, seen = 0, 0, []

    async def request(i: int) -> Sample:
        nonlocal inflight, peak
        inflight += 1
        peak = max(peak, inflight)
        await asyncio.sleep(0.001 * (i % 3))
        inflight -= 1
        seen.append(i)
        return Sample("x", 200, 0.01)

    samples, _ = asyncio.run(closed_loop(request, 50, 7))
    assert sorted(seen) == list(range(50)) and len(samples) == 50
    assert peak == 7


def test_timed_loop_stops_sending_after_the_deadline(monkeypatch):
    clock = [0.0]  # a fake clock that only the requests move: one second each
    monkeypatch.setattr(loadgen.time, "perf_counter", lambda: clock[0])
    sent = []

    async def request(i: int) -> Sample:
        sent.append(i)
        clock[0] += 1
        await asyncio.sleep(0)
        return Sample("x", 200, 1.0)

    samples, wall = asyncio.run(timed_loop(request, 10, 3))
    # Each user checks the deadline before sending: at most one request per user starts at
    # the last second before it.
    assert 10 <= len(sent) <= 12 and len(samples) == len(sent)
    assert sorted(sent) == list(range(len(sent)))
    assert wall == len(sent)


def test_summary_counts_failures_and_uses_successful_latencies_only():
    samples = [Sample("x", 200, s) for s in (0.1, 0.2, 0.3, 0.4)]
    samples += [Sample("x", 500, 9.0, error="boom"), Sample("x", -1, 9.0, error="refused")]
    summary = summarize(samples, wall_s=2.0)
    assert summary["requests"] == 6 and summary["failed"] == 2
    assert summary["rps"] == 2.0  # successful requests per second
    assert summary["p50_ms"] == 250.0
    assert summary["errors"] == ["-1: refused", "500: boom"]


def test_percentile_of_one_or_no_value():
    assert percentile([], 50) is None
    assert percentile([0.5], 95) == 0.5
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50) == 5.5
