"""uvicorn's httptools protocol with a limit on a request's header section (request line and
headers). httptools sets none: a client can send a gigabyte of one header and the server
buffers all of it before the app sees the request. Past LORAPLEX_MAX_HEADER_BYTES the
connection gets a 431 in OpenAI's error shape and is closed; nothing more is read from it.

Run the API with it: `uvicorn app.main:app --http app.kit.http_limits:HeaderLimitedHttpTools`
(`loraplex up` does)."""

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import get_settings
from app.errors import error_body

PROTOCOL = "app.kit.http_limits:HeaderLimitedHttpTools"


def _response_431(limit: int) -> bytes:
    body = json.dumps(
        error_body(
            f"The request's headers are larger than the {limit}-byte limit.",
            "invalid_request_error",
            None,
            "headers_too_large",
        )
    ).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    return head + body


class HeaderLimitedHttpTools(HttpToolsProtocol):
    """Two checks. While a request's headers are incomplete, the bytes received are counted
    after each chunk is parsed (a chunk that completes them may carry body bytes, so those
    are never counted against them): memory stays within the limit plus one network read.
    Once complete, their exact size is checked before the app sees the request."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_header_bytes = get_settings().max_header_bytes
        self.in_headers = True
        self.header_bytes = 0
        self.refused = False

    def refuse(self) -> None:
        """Answer 431 and close: no app call, and nothing more is read or parsed."""
        self.refused = True
        if not self.transport.is_closing():
            self.transport.write(_response_431(self.max_header_bytes))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.in_headers:
            self.header_bytes += len(data)
        super().data_received(data)
        if self.in_headers and self.header_bytes > self.max_header_bytes:
            self.refuse()

    def on_headers_complete(self) -> None:
        self.in_headers = False
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:
            self.refuse()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self.refused:
            return
        super().on_message_complete()
        self.in_headers = True
        self.header_bytes = 0
