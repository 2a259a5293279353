"""An adapter version as one zip: its files as stored (peft weights and config,
manifest.json), its lineage, and the latest decision report of its job when there is one."""

import json
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024


def write_zip(adapter_dir: Path, extras: dict[str, Any]) -> Iterator[bytes]:
    """Build the zip in a spooled temporary file (memory up to 8 MB, then disk) and yield
    it in chunks; the file goes when the stream ends."""
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for path in sorted(adapter_dir.rglob("*")):
                if path.is_file():
                    z.write(path, path.relative_to(adapter_dir).as_posix())
            for name, value in extras.items():
                z.writestr(name, json.dumps(value, indent=2, sort_keys=True))
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk
