"""A size limit on request bodies that are read whole (JSON): a 50 MB chat request would
otherwise be held in memory, then parsed into several times that. The streaming upload routes
(`POST /v1/files`, `POST /v1/uploads/{id}/parts`) write their bodies to disk as they arrive and
enforce their own limits, so they are left alone. The same middleware bounds the time a JSON
body may take to arrive."""

import json
import re
import time

import anyio
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import get_settings
from app.errors import error_body

STREAMING_ROUTES = re.compile(r"/v1/files|/v1/uploads/[^/]+/parts")


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body without a Content-Length passes the limit; FastAPI
    re-raises HTTP exceptions met while reading a body, so it reaches the error handlers."""

    def __init__(self, limit: int):
        super().__init__(413, too_large_message(limit))


class BodyTimeout(HTTPException):
    """Raised from `receive` when a body has not arrived whole in time (a slow-body attack
    holding a connection and a request's worth of memory)."""

    def __init__(self, timeout: float):
        super().__init__(
            408,
            f"The request body did not arrive within {timeout:g} seconds.",
            {"Connection": "close"},
        )


def too_large_message(limit: int) -> str:
    return f"The request body is larger than the {limit}-byte limit for this endpoint."


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class JsonBodyLimit:
    """Refuse with 413 a body over `LORAPLEX_MAX_JSON_BODY_BYTES`: at once when its
    Content-Length says so (nothing is read), or as soon as a chunked body passes it. The
    limit is read per request, so a changed setting applies without a restart."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or STREAMING_ROUTES.fullmatch(scope["path"]):
            await self.app(scope, receive, send)
            return
        limit = get_settings().max_json_body_bytes
        length = _content_length(scope)
        if length is not None and length > limit:
            await _send_too_large(send, limit)
            return
        timeout = get_settings().json_body_timeout
        deadline = time.monotonic() + timeout
        received, complete = 0, False

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body: waiting for a disconnect (streams) is not timed
                return await receive()
            try:
                with anyio.fail_after(max(deadline - time.monotonic(), 0)):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, limited_receive, send)


async def _send_too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        error_body(too_large_message(limit), "invalid_request_error", None, "request_too_large")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
