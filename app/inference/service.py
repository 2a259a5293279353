"""Resolve a request's `model` to something vLLM serves, then proxy the request."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session

from app.adapters import repository as adapters
from app.catalog.catalog import get_base_model
from app.errors import InvalidRequest, NotFound, UpstreamUnavailable
from app.inference.residency import AdapterResidency
from app.inference.vllm_client import AdapterLoadFailed, VLLMClient, iter_lines
from app.kit.storage import get_storage
from app.models import Tenant


@dataclass(frozen=True)
class ServingTarget:
    public_name: str  # what the tenant asked for and sees in responses
    served_name: str  # what vLLM knows it as
    adapter_path: str | None = None


def resolve(session: Session, tenant: Tenant, body: dict[str, Any]) -> ServingTarget:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string.", param="model")
    if get_base_model(model) is not None:
        return ServingTarget(public_name=model, served_name=model)
    adapter = adapters.get_by_name(session, tenant.id, model)
    if adapter is None or adapter.status != "ready":
        raise NotFound(
            f"The model '{model}' does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    path = str(get_storage().path(adapter.storage_key))
    return ServingTarget(public_name=model, served_name=adapter.id, adapter_path=path)


class Gateway:
    def __init__(self, client: VLLMClient):
        self.client = client
        self.residency = AdapterResidency(client)

    async def _prepare(self, target: ServingTarget) -> None:
        if target.adapter_path is None:
            return
        try:
            await self.residency.ensure_loaded(target.served_name, target.adapter_path)
        except AdapterLoadFailed as exc:
            raise UpstreamUnavailable(str(exc), code="adapter_load_failed") from exc

    async def complete(
        self, path: str, target: ServingTarget, body: dict[str, Any]
    ) -> JSONResponse | StreamingResponse:
        upstream_body = {**body, "model": target.served_name}
        await self._prepare(target)
        if body.get("stream"):
            return await self._stream(path, target, upstream_body)
        response = await self.client.post_json(path, upstream_body)
        if response.status_code == 404 and target.adapter_path:
            # The engine lost the adapter (restart or eviction): reload once and retry.
            self.residency.forget(target.served_name)
            await self._prepare(target)
            response = await self.client.post_json(path, upstream_body)
        payload = response.json()
        if isinstance(payload, dict) and "model" in payload:
            payload["model"] = target.public_name
        return JSONResponse(payload, status_code=response.status_code)

    async def _stream(
        self, path: str, target: ServingTarget, body: dict[str, Any]
    ) -> JSONResponse | StreamingResponse:
        response = await self.client.open_stream(path, body)
        if response.status_code == 404 and target.adapter_path:
            await response.aclose()
            self.residency.forget(target.served_name)
            await self._prepare(target)
            response = await self.client.open_stream(path, body)
        if response.status_code != 200:
            content = await response.aread()
            await response.aclose()
            return JSONResponse(json.loads(content or b"{}"), status_code=response.status_code)
        return StreamingResponse(
            _rewrite_sse(iter_lines(response), target.public_name),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


async def _rewrite_sse(lines: AsyncIterator[str], public_name: str) -> AsyncIterator[bytes]:
    """Pass SSE through line by line, renaming the model in each JSON chunk."""
    async for line in lines:
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            if "model" in chunk:
                chunk["model"] = public_name
            line = "data: " + json.dumps(chunk, separators=(",", ":"))
        yield (line + "\n").encode()
