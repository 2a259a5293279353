"""The client side of dataset uploads, used by `loraplex datasets upload`: a file of up to
64 MB goes to `POST /v1/files` in one streamed multipart request; a bigger one goes through
the Uploads API in 64 MB parts, each streamed from disk, with an md5 the server checks when
it assembles them. Memory stays constant whatever the size."""

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
PART_BYTES = 64 * 1024 * 1024
READ_CHUNK = 1024 * 1024
DONE_STATUSES = ("processed", "error")

OnBytes = Callable[[int], None]


class ApiError(Exception):
    def __init__(self, status_code: int, body: Any):
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else str(body)
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.body = body


def mime_type_of(path: Path) -> str:
    if path.name.endswith(".gz"):
        return "application/gzip"
    if path.suffix in (".jsonl", ".json"):
        return "text/jsonl"
    return "application/octet-stream"


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


class _MultipartSlice:
    """A multipart/form-data body of text `fields` and one file part holding `length` bytes
    of `source` from `offset`, read from disk as httpx sends it (with its exact length)."""

    def __init__(
        self,
        file_field: str,
        filename: str,
        source: IO[bytes],
        offset: int,
        length: int,
        fields: dict[str, str],
        on_bytes: OnBytes,
        digest: "hashlib._Hash | None" = None,
    ):
        boundary = secrets.token_hex(16)
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{_quoted(filename)}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        self.head = head.encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.source, self.offset, self.length, self.on_bytes = source, offset, length, on_bytes
        self.digest = digest
        self.headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(self.head) + length + len(self.tail)),
        }

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        self.source.seek(self.offset)
        remaining = self.length
        while remaining:
            chunk = self.source.read(min(READ_CHUNK, remaining))
            if not chunk:
                raise OSError("the file got shorter while it was being uploaded")
            remaining -= len(chunk)
            if self.digest is not None:
                self.digest.update(chunk)
            self.on_bytes(len(chunk))
            yield chunk
        yield self.tail


class DatasetClient:
    def __init__(self, base_url: str, api_key: str, part_bytes: int = PART_BYTES):
        self.part_bytes = part_bytes
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            # Assembling or fsyncing gigabytes takes a while: wait for answers, not for sends.
            timeout=httpx.Timeout(60.0, read=None),
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "DatasetClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400 or not isinstance(body, dict):
            raise ApiError(response.status_code, body)
        return body

    def upload(
        self, path: Path, purpose: str, on_bytes: OnBytes = lambda _: None
    ) -> dict[str, Any]:
        """Upload `path` and return its file object."""
        size = path.stat().st_size
        with path.open("rb") as source:
            if size <= self.part_bytes:
                body = _MultipartSlice(
                    "file", path.name, source, 0, size, {"purpose": purpose}, on_bytes
                )
                return self._json(
                    self.http.post("/files", content=iter(body), headers=body.headers)
                )
            return self._upload_in_parts(path, source, size, purpose, on_bytes)

    def _upload_in_parts(
        self, path: Path, source: IO[bytes], size: int, purpose: str, on_bytes: OnBytes
    ) -> dict[str, Any]:
        upload = self._json(
            self.http.post(
                "/uploads",
                json={
                    "filename": path.name,
                    "purpose": purpose,
                    "bytes": size,
                    "mime_type": mime_type_of(path),
                },
            )
        )
        md5 = hashlib.md5(usedforsecurity=False)
        part_ids: list[str] = []
        try:
            for offset in range(0, size, self.part_bytes):
                length = min(self.part_bytes, size - offset)
                # Parts go in order, each sent once, so the md5 is taken as they stream.
                body = _MultipartSlice(
                    "data", path.name, source, offset, length, {}, on_bytes, digest=md5
                )
                response = self.http.post(
                    f"/uploads/{upload['id']}/parts", content=iter(body), headers=body.headers
                )
                part_ids.append(self._json(response)["id"])
            done = self._json(
                self.http.post(
                    f"/uploads/{upload['id']}/complete",
                    json={"part_ids": part_ids, "md5": md5.hexdigest()},
                )
            )
        except BaseException:
            try:
                self.http.post(f"/uploads/{upload['id']}/cancel")
            except httpx.HTTPError:
                pass
            raise
        file = done.get("file")
        if not isinstance(file, dict):
            raise ApiError(200, {"error": {"message": f"completed upload has no file: {done}"}})
        return file

    def report(self, file_id: str) -> dict[str, Any]:
        return self._json(self.http.get(f"/files/{file_id}/report"))

    def wait_for_report(
        self, file_id: str, timeout: float, interval: float = 1.0
    ) -> dict[str, Any]:
        """Poll the file's report until validation is done or `timeout` seconds pass (then
        the last, unfinished report is returned)."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.report(file_id)
            if report.get("status") in DONE_STATUSES or time.monotonic() >= deadline:
                return report
            time.sleep(interval)
