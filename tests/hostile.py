"""Hostile inputs shared by the tests that feed them to the platform."""

import io
import json
import zipfile
import zlib
from pathlib import Path

GOOD_ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
GOOD_LINE = json.dumps(GOOD_ROW).encode() + b"\n"
MEMBER_BYTES = 64 * 1024 * 1024


def _gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    return compressor.compress(data) + compressor.flush()


def gzip_bomb(path: Path, expanded_gib: int, line: bytes = b"") -> int:
    """Write a gzip file that expands to `expanded_gib` GiB: one member of 64 MiB (zeros, or
    `line` repeated) compressed ~1000:1 and concatenated (a multi-member gzip stream is one
    valid file). Returns the size it expands to."""
    unit = line * (MEMBER_BYTES // len(line)) if line else bytes(MEMBER_BYTES)
    member = _gzip_member(unit)
    copies = expanded_gib * 1024**3 // len(unit)
    with path.open("wb") as out:
        for _ in range(copies):
            out.write(member)
    return copies * len(unit)


def zip_of(name: str, data: bytes) -> bytes:
    """A zip archive holding one deflated file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def nested(depth: int, kind: str = "list") -> str:
    """JSON text `depth` levels deep: [[[…]]] or {"a":{"a":…}}."""
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth
