"""Blob storage on the local filesystem (`var/storage` by default). Writes go to a temporary
file and are renamed into place only when complete, so a reader never sees half a blob."""

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sqlalchemy.orm import Session

from app.config import get_settings
from app.kit import after_commit

CHUNK = 1024 * 1024


class StorageLimitExceeded(Exception):
    pass


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str
    md5: str | None = None


class BlobWriter:
    """One blob being written: bytes go to a temporary file beside the target, hashed as they
    arrive; `commit()` fsyncs and renames it into place. Leaving the `with` block without
    committing (an error, a disconnect, a refused upload) removes the temporary file, so a
    partial blob never stays behind. `write` is blocking: async callers hand it to a thread."""

    def __init__(self, key: str, target: Path, max_bytes: int, md5: bool = False):
        self.key = key
        self.target = target
        self.max_bytes = max_bytes
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        self._out = os.fdopen(fd, "wb")
        self._done = False

    def check_room(self, more: int) -> None:
        """Raise StorageLimitExceeded if `more` bytes would take the blob past its limit."""
        if self.size + more > self.max_bytes:
            raise StorageLimitExceeded(f"larger than {self.max_bytes} bytes")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.check_room(len(data))
        self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        self._out.write(data)
        self.size += len(data)

    @property
    def md5(self) -> str | None:
        return self._md5.hexdigest() if self._md5 is not None else None

    def commit(self) -> StoredBlob:
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        os.replace(self._tmp_name, self.target)
        self._done = True
        return StoredBlob(self.key, self.size, self._sha256.hexdigest(), self.md5)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._out.close()  # flushes what is buffered: fails again on a full disk
        except OSError:
            pass
        finally:
            Path(self._tmp_name).unlink(missing_ok=True)

    def __enter__(self) -> "BlobWriter":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class LocalStorage:
    def __init__(self, root: Path):
        self.root = root

    def path(self, key: str) -> Path:
        resolved = (self.root / key).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return resolved

    def writer(self, key: str, max_bytes: int, md5: bool = False) -> BlobWriter:
        return BlobWriter(key, self.path(key), max_bytes, md5=md5)

    def iter_bytes(self, key: str) -> Iterator[bytes]:
        with self.path(key).open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def delete(self, key: str) -> None:
        target = self.path(key)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def get_storage() -> LocalStorage:
    return LocalStorage(get_settings().storage_dir)


def delete_after_commit(session: Session, key: str) -> None:
    """Delete blob (or folder) `key` once the session's transaction commits: the rows that
    point at it go first, and a rolled-back transaction leaves the bytes where they were."""
    after_commit.defer(session, BLOBS_TO_DELETE, key)


BLOBS_TO_DELETE = "blobs_to_delete"


@after_commit.handler(BLOBS_TO_DELETE)
def _delete_pending_blobs(keys: list[str]) -> None:
    storage = get_storage()
    for key in keys:
        storage.delete(key)
