"""The only code that speaks to vLLM. Tenants never reach vLLM's admin routes: the gateway
calls `/v1/load_lora_adapter` and `/v1/unload_lora_adapter` itself and proxies just the
inference routes."""

from collections.abc import AsyncIterator
from typing import Any

import httpx

from app.errors import UpstreamUnavailable


class AdapterLoadFailed(Exception):
    pass


class ReplicaUnreachable(UpstreamUnavailable):
    """The replica did not answer at all (refused, reset, timed out connecting)."""


class VLLMClient:
    def __init__(self, base_url: str, timeout: float = 600.0):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def healthy(self, timeout: float = 3.0) -> bool:
        try:
            response = await self.http.get("/health", timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def loaded_adapters(self) -> set[str]:
        response = await self._send("GET", "/v1/models")
        return {m["id"] for m in response.json().get("data", []) if m.get("parent")}

    async def load_adapter(self, lora_name: str, lora_path: str) -> None:
        response = await self._send(
            "POST", "/v1/load_lora_adapter", json={"lora_name": lora_name, "lora_path": lora_path}
        )
        if response.status_code == 200 or "already been loaded" in response.text:
            return
        raise AdapterLoadFailed(f"vLLM refused adapter {lora_name}: {response.text[:500]}")

    async def unload_adapter(self, lora_name: str) -> None:
        """Unregister an adapter; one the replica does not have (it restarted) is fine."""
        await self._send("POST", "/v1/unload_lora_adapter", json={"lora_name": lora_name})

    async def post_json(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self._send("POST", path, json=body)

    async def open_stream(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            request = self.http.build_request("POST", path, json=body)
            return await self.http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc


def _unreachable(exc: Exception) -> ReplicaUnreachable:
    return ReplicaUnreachable(
        f"The inference engine is unavailable right now ({type(exc).__name__}); retry shortly."
    )


async def iter_lines(response: httpx.Response) -> AsyncIterator[str]:
    try:
        async for line in response.aiter_lines():
            yield line
    finally:
        await response.aclose()
