"""Prometheus metrics, one registry per process. Labels name routes (templates, never raw
paths), replicas and outcomes — never tenants, keys or adapter ids, which would leak tenant data
and explode cardinality."""

import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

HTTP_REQUESTS = Counter(
    "loraplex_http_requests_total", "HTTP requests answered.", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "loraplex_http_request_duration_seconds",
    "Time from request to the last byte of the response (streams included).",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_TOKENS = Counter(
    "loraplex_inference_tokens_total", "Tokens served.", ["kind", "base_model"]
)
INFERENCE_REQUESTS = Counter(
    "loraplex_inference_requests_total",
    "Inference requests by route, target kind and outcome.",
    ["route", "target", "outcome"],
)
RATE_LIMITED = Counter("loraplex_rate_limited_total", "Requests refused with 429.", ["limit"])
ADAPTER_LOADS = Counter(
    "loraplex_adapter_loads_total", "Adapter loads into a replica.", ["replica", "outcome"]
)
ADAPTER_EVICTIONS = Counter(
    "loraplex_adapter_evictions_total", "Adapters unloaded to make room.", ["replica"]
)
RESIDENT_ADAPTERS = Gauge(
    "loraplex_resident_adapters", "Adapters the gateway holds loaded.", ["replica"]
)
REPLICA_HEALTHY = Gauge("loraplex_replica_healthy", "1 when the replica answers.", ["replica"])
UPSTREAM_RETRIES = Counter(
    "loraplex_upstream_retries_total", "Inference requests retried once.", ["reason"]
)


class MetricsMiddleware:
    """Counts every HTTP response and times it to its last body byte."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_label(scope)
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - started)


def _route_label(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
