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
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    target = await _target(caller, body)
    return await _gateway(request).complete("/v1/chat/completions", target, body)


@router.post("/v1/completions", response_model=None)
async def completions(
    request: Request, caller: ServingCaller, body: dict[str, Any] = RequestBody
) -> JSONResponse | StreamingResponse:
    if "prompt" not in body:
        raise InvalidRequest("'prompt' is required.", param="prompt")
    target = await _target(caller, body)
    return await _gateway(request).complete("/v1/completions", target, body)
