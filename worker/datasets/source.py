"""Reading an uploaded JSONL file in bounded memory: plain or gzip (told apart by magic bytes,
not by name), cut into blocks of whole lines for the analysis workers. A gzip stream is read
only up to LORAPLEX_MAX_DECOMPRESSED_BYTES; a zip archive is refused, not read.

A line longer than `MAX_LINE_BYTES` is never held in memory: it is skipped up to its newline
and reported as an `OversizedLine`. A damaged gzip stream ends the file with a `ReadFailure`
that names the line it stopped at.
"""

import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.config import get_settings

GZIP_MAGIC = b"\x1f\x8b"
# A zip archive starts with a local file header, or (empty / spanned) these.
ZIP_MAGICS = {b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"}
UTF8_BOM = b"\xef\xbb\xbf"
MAX_LINE_BYTES = 10 * 1024 * 1024
DEFAULT_BLOCK_BYTES = 4 * 1024 * 1024
_READ_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LineBlock:
    """Whole lines (each ending in b"\\n", except maybe the file's last); the first is line
    number `first_line` (1-based) of the file."""

    first_line: int
    data: bytes

    def lines(self) -> Iterator[tuple[int, bytes]]:
        for offset, line in enumerate(self.data.splitlines(keepends=True)):
            yield self.first_line + offset, line


@dataclass(frozen=True)
class OversizedLine:
    line: int
    size: int


@dataclass(frozen=True)
class ReadFailure:
    line: int
    code: str
    message: str


Piece = LineBlock | OversizedLine | ReadFailure


class DecompressedTooLarge(OSError):
    """A gzip file expanded past the decompressed-size limit (a gzip bomb, say)."""

    def __init__(self, limit: int):
        super().__init__(f"it expands to more than {limit} bytes")
        self.limit = limit


class _BoundedGzip(io.BufferedIOBase):
    """A gzip stream that raises DecompressedTooLarge once more than `limit` decompressed
    bytes have been read: a few MB of gzip can expand to terabytes, and every reader
    (validation, data preparation, training) would otherwise read them all."""

    def __init__(self, path: Path, limit: int):
        super().__init__()
        self._inner = gzip.open(path, "rb")
        self._limit = limit
        self._read = 0

    def readable(self) -> bool:
        return True

    def _counted(self, data: bytes) -> bytes:
        self._read += len(data)
        if self._read > self._limit:
            raise DecompressedTooLarge(self._limit)
        return data

    def read(self, size: int | None = -1) -> bytes:
        # Read in bounded steps, so "read everything" cannot expand a bomb in memory first.
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read1(_READ_BYTES), b""))
        return self._counted(self._inner.read(size))

    def read1(self, size: int = -1) -> bytes:
        return self._counted(self._inner.read1(size if size >= 0 else _READ_BYTES))

    def close(self) -> None:
        self._inner.close()
        super().close()


def is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == GZIP_MAGIC


def is_zip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) in ZIP_MAGICS


def open_stream(path: Path, max_decompressed: int | None = None) -> BinaryIO:
    """The file's JSONL bytes, decompressing a gzip file on the fly, at most
    `max_decompressed` bytes of it (default: LORAPLEX_MAX_DECOMPRESSED_BYTES)."""
    if is_gzip(path):
        if max_decompressed is None:
            max_decompressed = get_settings().max_decompressed_bytes
        return _BoundedGzip(path, max_decompressed)  # type: ignore[return-value]
    return path.open("rb")


def iter_pieces(
    path: Path, block_bytes: int = DEFAULT_BLOCK_BYTES, max_decompressed: int | None = None
) -> Iterator[Piece]:
    """Cut the file into blocks of about `block_bytes` of whole lines, in order. The UTF-8
    byte-order mark of the first line is removed (it is still counted in no line's length).
    A zip archive is one ReadFailure: only JSONL, plain or gzip, is read."""
    if is_zip(path):
        message = (
            "the file is a zip archive; upload the JSONL file itself, plain or gzip-compressed"
        )
        yield ReadFailure(1, "unsupported_archive", message)
        return
    with open_stream(path, max_decompressed) as stream:
        yield from _cut(stream, block_bytes)


def _cut(stream: BinaryIO, block_bytes: int) -> Iterator[Piece]:
    line = 1  # number of the first line in `pending`
    pending = bytearray()
    first_read = True
    while True:
        try:
            # read1, not read: a gzip read that fails part-way would drop what it had
            # already decompressed, losing the rows before a truncation.
            chunk = stream.read1(_READ_BYTES)  # type: ignore[attr-defined]
        except (EOFError, OSError, zlib.error) as exc:
            if isinstance(exc, DecompressedTooLarge):
                # The line the limit cut is not a row to check: keep only whole lines.
                del pending[pending.rfind(b"\n") + 1 :]
            if pending:
                yield LineBlock(line, bytes(pending))
                line += pending.count(b"\n")
            yield _failure(line, exc)
            return
        if first_read:
            first_read = False
            chunk = chunk.removeprefix(UTF8_BOM)
        if not chunk:
            if pending:
                yield LineBlock(line, bytes(pending))
            return
        pending += chunk
        last_newline = pending.rfind(b"\n")
        partial = len(pending) - last_newline - 1
        if last_newline >= 0 and (last_newline + 1 >= block_bytes or partial > MAX_LINE_BYTES):
            block = bytes(pending[: last_newline + 1])
            del pending[: last_newline + 1]
            yield LineBlock(line, block)
            line += block.count(b"\n")
        if len(pending) > MAX_LINE_BYTES and b"\n" not in pending:
            size = len(pending)
            pending.clear()
            try:
                size += _skip_line(stream, pending)
            except (EOFError, OSError, zlib.error) as exc:
                yield OversizedLine(line, size)
                yield _failure(line, exc)
                return
            yield OversizedLine(line, size)
            line += 1


def _skip_line(stream: BinaryIO, rest: bytearray) -> int:
    """Read past the end of the current line; what follows its newline is put in `rest`.
    Returns the number of bytes of the line that were skipped (its newline included)."""
    skipped = 0
    while True:
        chunk = stream.read(_READ_BYTES)
        if not chunk:
            return skipped
        newline = chunk.find(b"\n")
        if newline >= 0:
            rest += chunk[newline + 1 :]
            return skipped + newline + 1
        skipped += len(chunk)


def _failure(line: int, exc: BaseException) -> ReadFailure:
    if isinstance(exc, DecompressedTooLarge):
        message = (
            f"the gzip stream {exc}, the limit (LORAPLEX_MAX_DECOMPRESSED_BYTES); reading stopped"
        )
        return ReadFailure(line, "decompressed_too_large", message)
    if isinstance(exc, EOFError):
        message = "the gzip stream ends early (truncated upload?); rows from here on were not read"
        return ReadFailure(line, "truncated_gzip", message)
    return ReadFailure(line, "corrupt_gzip", f"the gzip stream is damaged ({exc}); reading stopped")
