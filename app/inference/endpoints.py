from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from app.auth import callers
from app.auth.callers import Caller
from app.auth.service import authorize_scopes, bearer_key, hash_key
from app.db import session_scope
from app.errors import InvalidRequest
from app.inference.schemas import ServingTarget
from app.inference.service import Gateway, base_target, resolve_for

router = APIRouter(tags=["inference"])
RequestBody = Body(..., media_type="application/json")
# A chat request is a handful of levels deep (tool schemas a few dozen); the body is passed on
# as is, and encoding or parsing a much deeper one again (here, in vLLM) recurses that deep.
MAX_BODY_DEPTH = 64


def check_depth(body: dict[str, Any]) -> None:
    """Refuse a body nested deeper than MAX_BODY_DEPTH (checked without recursion)."""
    level: list[Any] = [body]
    for _ in range(MAX_BODY_DEPTH):
        level = [
            child
            for value in level
            for child in (value.values() if isinstance(value, dict) else value)
            if isinstance(child, dict | list)
        ]
        if not level:
            return
    raise InvalidRequest(
        f"The request is nested more than {MAX_BODY_DEPTH} levels deep.", code="json_too_deep"
    )


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def serving_caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """The caller of a completion route: from the short-lived cache (app/auth/callers.py) when
    it was seen a moment ago, else from the database in a worker thread."""
    key_hash = hash_key(bearer_key(authorization))
    caller: Caller | None = callers.lookup(key_hash)
    if caller is None:
        caller = await run_in_threadpool(callers.load, key_hash, authorization)
        assert caller is not None
    route = request.scope.get("route")
    authorize_scopes(
        caller.key_prefix, caller.scopes, request.method, getattr(route, "path", request.url.path)
    )
    return caller


ServingCaller = Annotated[Caller, Depends(serving_caller)]


async def _target(caller: Caller, body: dict[str, Any]) -> ServingTarget:
    """Base models resolve without the database; adapters, checkpoints and aliases are read
    afresh on every request (a repointed alias is served at once)."""
    target = base_target(caller.tenant_id, caller.limits, body)
    if target is not None:
        return target

    def from_database() -> ServingTarget:
        with session_scope() as session:
            return resolve_for(session, caller.tenant_id, caller.limits, body)

    return await run_in_threadpool(from_database)


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    request: Request, caller: ServingCaller, body: dict[str, Any] = RequestBody
) -> JSONResponse | StreamingResponse:
    check_depth(body)
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    target = await _target(caller, body)
    return await _gateway(request).complete("/v1/chat/completions", target, body)


@router.post("/v1/completions", response_model=None)
async def completions(
    request: Request, caller: ServingCaller, body: dict[str, Any] = RequestBody
) -> JSONResponse | StreamingResponse:
    check_depth(body)
    if "prompt" not in body:
        raise InvalidRequest("'prompt' is required.", param="prompt")
    target = await _target(caller, body)
    return await _gateway(request).complete("/v1/completions", target, body)
