from typing import Any

from fastapi import APIRouter, Body, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from app.auth.dependencies import CurrentTenant, SessionDep
from app.errors import InvalidRequest
from app.inference.service import Gateway, resolve

router = APIRouter(tags=["inference"])
RequestBody = Body(..., media_type="application/json")


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
    if "prompt" not in body:
        raise InvalidRequest("'prompt' is required.", param="prompt")
    target = await run_in_threadpool(resolve, session, tenant, body)
    return await _gateway(request).complete("/v1/completions", target, body)
