"""The eval runner's HTTP client for the serving gateway: the same `/v1/chat/completions` a
tenant calls, so what is measured is what is served. Rate-limited (429) or briefly
unavailable (503) answers are retried after the delay the gateway asks for."""

import time
from dataclasses import dataclass
from typing import Any

import httpx

RETRY_STATUSES = {429, 503}
MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class Answer:
    text: str
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int


class GatewayError(Exception):
    """The gateway refused this request (a 4xx other than 429): the row's own problem."""


class GatewayClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 300):
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._client.close()

    def chat(
        self, model: str, messages: list[dict[str, Any]], max_tokens: int, seed: int
    ) -> Answer:
        body = {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
            "seed": seed,
        }
        for attempt in range(MAX_ATTEMPTS):
            started = time.perf_counter()
            response = self._client.post("/v1/chat/completions", json=body)
            latency_ms = (time.perf_counter() - started) * 1000
            if response.status_code in RETRY_STATUSES and attempt < MAX_ATTEMPTS - 1:
                time.sleep(_retry_after(response, attempt))
                continue
            if 400 <= response.status_code < 500:
                raise GatewayError(_error_message(response))
            response.raise_for_status()
            data = response.json()
            usage = data.get("usage") or {}
            return Answer(
                text=str(data["choices"][0]["message"].get("content") or ""),
                latency_ms=latency_ms,
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        raise AssertionError("unreachable: the last attempt returns or raises")

    def complete_judge(self, model: str) -> "JudgeCall":
        return JudgeCall(self, model)


class JudgeCall:
    """A judge that is the gateway itself (any model the tenant may call)."""

    def __init__(self, client: GatewayClient, model: str):
        self.client = client
        self.model = model

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        return self.client.chat(self.model, messages, max_tokens=8, seed=0).text


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return min(float(response.headers.get("retry-after", "")), 30.0)
    except ValueError:
        return min(0.5 * 2**attempt, 30.0)


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"
