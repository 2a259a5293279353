"""Streaming `multipart/form-data`: the request body is parsed as it arrives and its one file
part goes straight into a storage `BlobWriter`, so memory stays constant whatever the size
(Starlette's form parser would spool it to a temporary file first). Other fields are small
text values, collected in memory. Used by `POST /v1/files` and `POST /v1/uploads/{id}/parts`."""

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from app.config import get_settings
from app.errors import InvalidRequest, RequestTimeout
from app.kit.storage import BlobWriter, StorageLimitExceeded

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# Room for part headers and the small text fields around the file part.
FORM_OVERHEAD = 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 16
# Parsed file bytes are handed to the writer (in a worker thread) in slices of about this size.
FLUSH_BYTES = 1024 * 1024


@dataclass(frozen=True)
class IncomingBody:
    """What the services need of an HTTP request body, without depending on Starlette."""

    content_type: str | None
    content_length: int | None
    chunks: AsyncIterator[bytes]

    @classmethod
    def of(cls, request: Request) -> "IncomingBody":
        length = request.headers.get("content-length")
        return cls(
            content_type=request.headers.get("content-type"),
            content_length=int(length) if length and length.isdigit() else None,
            chunks=_until_disconnect(
                request,
                get_settings().upload_idle_timeout,
                get_settings().upload_min_bytes_per_second,
            ),
        )


async def _until_disconnect(
    request: Request, idle_timeout: float, min_rate: int = 0
) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive. A client that hangs up, sends nothing for
    `idle_timeout` seconds, or (past the first `idle_timeout` seconds) averages fewer than
    `min_rate` bytes a second (stalled and slowloris uploads, each holding a connection and a
    half-written blob) ends the upload with an error; the caller's writer then removes what
    was written."""
    chunks = request.stream().__aiter__()
    started, received = time.monotonic(), 0
    while True:
        try:
            with anyio.fail_after(idle_timeout):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestTimeout(
                f"The upload sent nothing for {idle_timeout:g} seconds; it was dropped and "
                "nothing was stored."
            ) from None
        except ClientDisconnect:
            raise InvalidRequest(
                "The client disconnected before the upload finished; nothing was stored.",
                code="upload_aborted",
            ) from None
        received += len(chunk)
        elapsed = time.monotonic() - started
        if min_rate and elapsed > idle_timeout and received < min_rate * elapsed:
            raise RequestTimeout(
                f"The upload averaged {received / elapsed:.0f} bytes a second, under the "
                f"minimum of {min_rate}; it was dropped and nothing was stored.",
                code="upload_too_slow",
            )
        yield chunk


@dataclass
class ReceivedForm:
    fields: dict[str, str]
    filename: str | None = None
    has_file: bool = False


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    is_file: bool = False
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    value: bytearray = field(default_factory=bytearray)


class _FormEvents:
    """python-multipart callbacks. They run synchronously inside `parser.write()`, so file
    bytes are only buffered here (at most one network chunk past FLUSH_BYTES) and written
    by the async loop in `receive_form`."""

    def __init__(self, file_field: str, writer: BlobWriter):
        self.file_field = file_field
        self.writer = writer
        self.form = ReceivedForm(fields={})
        self.part = _Part()
        self.parts = 0
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.pending = bytearray()
        self.buffered = 0
        self.finished_fields: list[tuple[str, str]] = []
        self.ended = False

    def callbacks(self) -> "MultipartCallbacks":
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidRequest(f"Too many form fields (at most {MAX_PARTS}).")
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers.append((bytes(self.header_name).lower(), bytes(self.header_value)))
        self.header_name.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        disposition = next((v for k, v in self.part.headers if k == b"content-disposition"), b"")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise InvalidRequest("A form part has no name in its Content-Disposition header.")
        self.part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            self.part.filename = options[b"filename"].decode("utf-8", "replace")
        if self.part.name == self.file_field:
            if self.form.has_file:
                raise InvalidRequest(
                    f"Send exactly one '{self.file_field}' part.", param=self.file_field
                )
            self.part.is_file = True
            self.form.has_file = True
            self.form.filename = self.part.filename
        elif self.part.filename is not None:
            raise InvalidRequest(
                f"Unexpected file part '{self.part.name}'; send the bytes as '{self.file_field}'.",
                param=self.part.name,
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.is_file:
            # Refuse as soon as the limit is crossed, before buffering anything more.
            self.writer.check_room(self.buffered + end - start)
            self.pending += data[start:end]
            self.buffered += end - start
            return
        if len(self.part.value) + end - start > MAX_FIELD_BYTES:
            raise InvalidRequest(
                f"Form field '{self.part.name}' is larger than {MAX_FIELD_BYTES} bytes.",
                param=self.part.name,
            )
        self.part.value += data[start:end]

    def on_part_end(self) -> None:
        if not self.part.is_file:
            value = self.part.value.decode("utf-8", "replace")
            self.form.fields[self.part.name] = value
            self.finished_fields.append((self.part.name, value))

    def on_end(self) -> None:
        self.ended = True

    def take_pending(self) -> bytearray:
        data, self.pending = self.pending, bytearray()
        self.buffered = 0
        return data


def _boundary(content_type: str | None) -> bytes:
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise InvalidRequest(
            "Expected a multipart/form-data body (with a boundary).", code="invalid_content_type"
        )
    return params[b"boundary"]


async def receive_form(
    body: IncomingBody,
    file_field: str,
    writer: BlobWriter,
    on_field: Callable[[str, str], None] | None = None,
) -> ReceivedForm:
    """Parse `body`, writing part `file_field` into `writer` (not committed: the caller
    decides) and returning the text fields. `on_field(name, value)` sees each text field as
    soon as it is complete, so a bad `purpose` sent before the file is refused before the
    file's bytes are read. Raises StorageLimitExceeded once the file passes the writer's
    limit, InvalidRequest for a malformed, truncated or aborted body."""
    if body.content_length is not None and body.content_length > (writer.max_bytes + FORM_OVERHEAD):
        raise StorageLimitExceeded(f"body of {body.content_length} bytes")
    events = _FormEvents(file_field, writer)
    parser = MultipartParser(_boundary(body.content_type), events.callbacks())
    received = 0
    try:
        async for chunk in body.chunks:
            received += len(chunk)
            if received > writer.max_bytes + FORM_OVERHEAD:
                raise StorageLimitExceeded(f"body over {received} bytes")
            parser.write(chunk)
            if events.buffered >= FLUSH_BYTES:
                await anyio.to_thread.run_sync(writer.write, events.take_pending())
            if on_field is not None:
                for name, value in events.finished_fields:
                    on_field(name, value)
                events.finished_fields.clear()
        parser.finalize()
    except FormParserError as exc:
        raise InvalidRequest(f"Malformed multipart body: {exc}", code="invalid_multipart") from None
    if events.buffered:
        await anyio.to_thread.run_sync(writer.write, events.take_pending())
    if not events.ended:
        raise InvalidRequest(
            "The multipart body ended before its closing boundary; nothing was stored.",
            code="incomplete_body",
        )
    return events.form
