"""Resolve a request's `model` (base model, own `ft:` adapter or alias) to something vLLM
serves, then proxy it: rate limit, pick a replica, make sure the adapter is resident, forward,
rename `model` back, and report usage — without a database write on the request path."""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import httpx
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session

from app.adapters import repository as adapters_repo
from app.adapters import service as adapters
from app.aliases import service as aliases
from app.catalog.catalog import get_base_model
from app.errors import InvalidRequest, NotFound, UpstreamUnavailable
from app.inference.replicas import Replica, ReplicaPool
from app.inference.schemas import ServedRequest, ServingTarget
from app.inference.vllm_client import ReplicaUnreachable, iter_lines
from app.jobs import service as jobs
from app.kit.metrics import INFERENCE_REQUESTS, INFERENCE_TOKENS, UPSTREAM_RETRIES
from app.kit.storage import get_storage
from app.models import Adapter, JobCheckpoint, Tenant
from app.ratelimits import service as ratelimits
from app.ratelimits.bucket import Decision, Limits
from app.ratelimits.service import Limiter

log = logging.getLogger(__name__)

CHAT_ROUTE = "/v1/chat/completions"
# vLLM request extensions a tenant may not set: the chat template is the served model's (the
# adapters were checked against it), and nothing may name files or code on the server.
BLOCKED_FIELDS = ("chat_template", "logits_processors", "lora_request", "kv_transfer_params")
SERVED_MODEL_HEADER = "x-loraplex-served-model"

Sink = Callable[[ServedRequest], None]


def _not_found(model: str) -> NotFound:
    return NotFound(
        f"The model '{model}' does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def _adapter_target(
    adapter: Adapter, public_name: str, kind: str, limits: Limits, system_prompt: str | None
) -> ServingTarget:
    adapters.check_servable(adapter)
    return ServingTarget(
        tenant_id=adapter.tenant_id,
        public_name=public_name,
        served_name=adapter.id,
        kind=kind,
        base_model=adapter.base_model,
        limits=limits,
        adapter_id=adapter.id,
        adapter_path=str(get_storage().path(adapter.storage_key)),
        system_prompt=system_prompt,
    )


def _checkpoint_target(
    checkpoint: JobCheckpoint, base_model: str, *, public_name: str, limits: Limits
) -> ServingTarget:
    if get_base_model(base_model) is None:
        raise _not_found(public_name)
    return ServingTarget(
        tenant_id=checkpoint.tenant_id,
        public_name=public_name,
        served_name=checkpoint.id,
        kind="checkpoint",
        base_model=base_model,
        limits=limits,
        adapter_path=str(get_storage().path(checkpoint.storage_key)),
    )


def requested_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string.", param="model")
    return model


def base_target(tenant_id: str, limits: Limits, body: dict[str, Any]) -> ServingTarget | None:
    """The target when `model` names a base model: no database read needed."""
    model = requested_model(body)
    if get_base_model(model) is None:
        return None
    return ServingTarget(tenant_id, model, model, "base", model, limits)


def resolve(session: Session, tenant: Tenant, body: dict[str, Any]) -> ServingTarget:
    return resolve_for(session, tenant.id, ratelimits.limits_for(session, tenant.id), body)


def resolve_for(
    session: Session, tenant_id: str, limits: Limits, body: dict[str, Any]
) -> ServingTarget:
    """What `model` names for this tenant: a base model, an adapter, a checkpoint or an alias
    (read afresh on every request: repointing an alias takes effect at once)."""
    found_base = base_target(tenant_id, limits, body)
    if found_base is not None:
        return found_base
    model = requested_model(body)
    adapter = adapters_repo.get_by_name(session, tenant_id, model)
    if adapter is not None:
        return _adapter_target(adapter, model, "adapter", limits, None)
    found = jobs.servable_checkpoint(session, tenant_id, model)
    if found is not None:
        return _checkpoint_target(*found, public_name=model, limits=limits)
    alias = aliases.lookup(session, tenant_id, model)
    if alias is None:
        raise _not_found(model)
    if alias.adapter_id is not None:
        target = adapters_repo.get(session, tenant_id, alias.adapter_id)
        if target is None:
            raise _not_found(model)
        return _adapter_target(target, model, "alias", limits, alias.system_prompt)
    assert alias.base_model is not None
    if get_base_model(alias.base_model) is None:
        raise _not_found(model)
    return ServingTarget(
        tenant_id=tenant_id,
        public_name=model,
        served_name=alias.base_model,
        kind="alias",
        base_model=alias.base_model,
        limits=limits,
        system_prompt=alias.system_prompt,
    )


def upstream_body(route: str, target: ServingTarget, body: dict[str, Any]) -> tuple[dict, str]:
    """The body vLLM gets, and which streamed usage the client itself asked for: "none",
    "final" (OpenAI's include_usage: one last chunk) or "continuous" (vLLM's extension)."""
    out = {k: v for k, v in body.items() if k not in BLOCKED_FIELDS}
    out["model"] = target.served_name
    if target.system_prompt and route == CHAT_ROUTE:
        out["messages"] = with_system_prompt(body["messages"], target.system_prompt)
    wants_usage = "none"
    if body.get("stream"):
        options = dict(body.get("stream_options") or {})
        if options.get("include_usage"):
            wants_usage = "continuous" if options.get("continuous_usage_stats") else "final"
        # Always ask for usage on every chunk: a stream the client abandons is still metered
        # with the tokens generated so far. What the client did not ask for is stripped.
        options["include_usage"] = True
        options["continuous_usage_stats"] = True
        out["stream_options"] = options
    return out, wants_usage


def with_system_prompt(messages: list[Any], prompt: str) -> list[Any]:
    """The alias' system prompt comes first; a client's own system message follows it."""
    first = messages[0] if messages else None
    if isinstance(first, dict) and first.get("role") == "system":
        content = first.get("content")
        if isinstance(content, str):
            return [{**first, "content": f"{prompt}\n\n{content}"}, *messages[1:]]
    return [{"role": "system", "content": prompt}, *messages]


class Gateway:
    def __init__(self, pool: ReplicaPool, limiter: Limiter, sinks: Sequence[Sink] = ()):
        self.pool = pool
        self.limiter = limiter
        self.sinks = list(sinks)
        self._background: set[asyncio.Task[None]] = set()

    async def complete(
        self, route: str, target: ServingTarget, body: dict[str, Any]
    ) -> JSONResponse | StreamingResponse:
        started = time.perf_counter()
        decision = await ratelimits.admit(self.limiter, target.tenant_id, target.limits)
        payload, wants_usage = upstream_body(route, target, body)
        headers = self._headers(target, decision)
        if body.get("stream"):
            return await self._stream(route, target, payload, wants_usage, started, headers)
        replica, response = await self._open(route, target, payload, stream=False)
        try:
            result = _json(response)
        finally:
            replica.inflight -= 1
        if response.status_code == 200 and isinstance(result, dict):
            await self._served(route, target, result.get("id"), result.get("usage"), started)
        else:
            INFERENCE_REQUESTS.labels(route, target.kind, "upstream_error").inc()
        if isinstance(result, dict) and "model" in result:
            result["model"] = target.public_name
        return JSONResponse(result, status_code=response.status_code, headers=headers)

    def _headers(self, target: ServingTarget, decision: Decision) -> dict[str, str]:
        limits = ratelimits.headers(decision, target.limits)
        return {**limits, SERVED_MODEL_HEADER: target.served_name}

    async def _open(
        self, route: str, target: ServingTarget, body: dict[str, Any], stream: bool
    ) -> tuple[Replica, httpx.Response]:
        """Send to a replica; retry once if the replica is unreachable (on another replica, or
        on the same one if a fresh probe finds it back) or lost the adapter (reload first).
        The caller owns `replica.inflight` of the replica returned and must decrement it."""
        retried = False
        while True:
            replica = await self.pool.pick(target.routing_key)
            replica.inflight += 1
            try:
                response = await self._send(replica, route, target, body, stream)
            except ReplicaUnreachable:
                replica.inflight -= 1
                self.pool.mark_down(replica)
                if retried:
                    raise
                retried = True
                UPSTREAM_RETRIES.labels("unreachable").inc()
                continue
            except BaseException:
                replica.inflight -= 1
                raise
            if response.status_code == 404 and target.adapter_path and not retried:
                # The replica lost the adapter (it restarted): reload it and retry once.
                await response.aclose()
                replica.inflight -= 1
                replica.residency.forget(target.served_name)
                retried = True
                UPSTREAM_RETRIES.labels("adapter_lost").inc()
                continue
            return replica, response

    async def _send(
        self,
        replica: Replica,
        route: str,
        target: ServingTarget,
        body: dict[str, Any],
        stream: bool,
    ) -> httpx.Response:
        if target.adapter_path is None:
            if stream:
                return await replica.client.open_stream(route, body)
            return await replica.client.post_json(route, body)
        await replica.residency.acquire(target.served_name, target.adapter_path)
        try:
            if stream:
                return await replica.client.open_stream(route, body)
            return await replica.client.post_json(route, body)
        finally:
            replica.residency.release(target.served_name)

    async def _stream(
        self,
        route: str,
        target: ServingTarget,
        body: dict[str, Any],
        wants_usage: str,
        started: float,
        headers: dict[str, str],
    ) -> JSONResponse | StreamingResponse:
        replica, response = await self._open(route, target, body, stream=True)
        if response.status_code != 200:
            try:
                content = await response.aread()
            finally:
                await response.aclose()
                replica.inflight -= 1
            INFERENCE_REQUESTS.labels(route, target.kind, "upstream_error").inc()
            return JSONResponse(_loads(content), status_code=response.status_code, headers=headers)
        return StreamingResponse(
            self._relay(route, replica, response, target, wants_usage, started),
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _relay(
        self,
        route: str,
        replica: Replica,
        response: httpx.Response,
        target: ServingTarget,
        wants_usage: str,
        started: float,
    ) -> AsyncIterator[bytes]:
        """Pass SSE through line by line, renaming the model in each chunk. Usage rides on
        every chunk from vLLM; the latest is what gets metered, also when the client goes
        away mid-stream (closing the upstream response makes vLLM abort the request)."""
        completion_id: str | None = None
        usage: dict[str, Any] | None = None
        skip_blank = False
        outcome = "client_disconnected"
        try:
            async for line in iter_lines(response):
                if skip_blank and not line:
                    skip_blank = False
                    continue
                if line.startswith("data: {"):
                    chunk = json.loads(line[6:])
                    completion_id = completion_id or chunk.get("id")
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    if not _usage_for_client(chunk, wants_usage):
                        skip_blank = True
                        continue
                    if "model" in chunk:
                        chunk["model"] = target.public_name
                    line = "data: " + json.dumps(chunk, separators=(",", ":"))
                yield (line + "\n").encode()
            outcome = "ok"
        except httpx.HTTPError as exc:
            # The replica went away mid-stream: end the stream with an error event.
            log.warning("stream from %s broke: %r", replica.url, exc)
            outcome = "stream_broken"
            error = {
                "error": {
                    "message": "The inference engine stopped mid-stream; retry the request.",
                    "type": "server_error",
                    "param": None,
                    "code": "inference_interrupted",
                }
            }
            yield f"data: {json.dumps(error)}\n\n".encode()
        finally:
            replica.inflight -= 1
            tokens = self._record(route, target, completion_id, usage, started, outcome)
            if tokens:
                # Not awaited here: when the client went away this task is being cancelled.
                self._spawn(self.limiter.debit(target.tenant_id, tokens, target.limits))
            await response.aclose()  # also when the client went away mid-stream

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _served(
        self,
        route: str,
        target: ServingTarget,
        completion_id: Any,
        usage: Any,
        started: float,
    ) -> None:
        tokens = self._record(route, target, completion_id, usage, started, "ok")
        if tokens:
            # After the answer, not before it: the client does not wait for the bucket.
            self._spawn(self.limiter.debit(target.tenant_id, tokens, target.limits))

    def _record(
        self,
        route: str,
        target: ServingTarget,
        completion_id: Any,
        usage: Any,
        started: float,
        outcome: str,
    ) -> int:
        """Count one request in the metrics and the usage sinks; returns its tokens."""
        usage = usage if isinstance(usage, dict) else {}
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        INFERENCE_REQUESTS.labels(route, target.kind, outcome).inc()
        INFERENCE_TOKENS.labels("prompt", target.base_model).inc(prompt)
        INFERENCE_TOKENS.labels("completion", target.base_model).inc(completion)
        served = ServedRequest(
            tenant_id=target.tenant_id,
            model=target.public_name,
            served_model=target.served_name,
            adapter_id=target.adapter_id,
            completion_id=completion_id if isinstance(completion_id, str) else None,
            prompt_tokens=prompt,
            completion_tokens=completion,
            latency_ms=int((time.perf_counter() - started) * 1000),
            finished_at=time.time(),
        )
        for sink in self.sinks:
            try:
                sink(served)
            except Exception:
                log.exception("usage sink failed")
        return prompt + completion


def _usage_for_client(chunk: dict[str, Any], wants_usage: str) -> bool:
    """Strip the usage the client did not ask for from `chunk`; False when nothing is left
    to send (vLLM's usage-only final chunk for a client that did not ask for usage)."""
    final = not chunk.get("choices")
    if wants_usage == "none":
        chunk.pop("usage", None)
        return not final
    if wants_usage == "final" and not final:
        chunk["usage"] = None  # OpenAI's shape: null on every chunk but the last
    return True


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise UpstreamUnavailable(
            f"The inference engine answered {response.status_code} without a JSON body.",
            code="inference_bad_response",
        ) from None


def _loads(content: bytes) -> Any:
    try:
        return json.loads(content or b"{}")
    except ValueError:
        raise UpstreamUnavailable(
            "The inference engine answered without a JSON body.", code="inference_bad_response"
        ) from None
