from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from app.auth.dependencies import CurrentTenant, SessionDep
from app.errors import InvalidRequest
from app.inference.service import Gateway, resolve

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


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    request: Request,
    tenant: CurrentTenant,
    session: SessionDep,
    body: dict[str, Any] = RequestBody,
) -> JSONResponse | StreamingResponse:
    check_depth(body)
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    target = await run_in_threadpool(resolve, session, tenant, body)
    return await _gateway(request).complete("/v1/chat/completions", target, body)


@router.post("/v1/completions", response_model=None)
async def completions(
    request: Request,
    tenant: CurrentTenant,
    session: SessionDep,
    body: dict[str, Any] = RequestBody,
) -> JSONResponse | StreamingResponse:
    check_depth(body)
    if "prompt" not in body:
        raise InvalidRequest("'prompt' is required.", param="prompt")
    target = await run_in_threadpool(resolve, session, tenant, body)
    return await _gateway(request).complete("/v1/completions", target, body)
