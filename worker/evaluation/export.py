"""Adapter exports: the adapter alone, or merged into the base weights and saved as plain
safetensors (with the tokenizer and the adapter's manifest), zipped into storage. Runs on a
worker (torch/peft are imported here, never in app/)."""

import logging
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import update

from app.catalog.catalog import get_base_model
from app.db import session_scope
from app.kit.ids import now
from app.kit.storage import get_storage
from app.models import Adapter, AdapterExport

log = logging.getLogger(__name__)
MAX_EXPORT_BYTES = 512 * 1024**3
CHUNK = 1024 * 1024


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path) -> None:
    """Fold the LoRA deltas into the base weights (full precision of the base checkpoint)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)
    manifest = adapter_dir / "manifest.json"
    if manifest.exists():
        shutil.copy(manifest, out_dir / "manifest.json")


def zip_folder(folder: Path, target: Path) -> None:
    # safetensors barely compress; storing keeps a multi-GB export fast.
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder).as_posix())


def _set(export_id: str, from_status: str, **values: Any) -> bool:
    with session_scope() as session:
        result = session.execute(
            update(AdapterExport)
            .where(AdapterExport.id == export_id, AdapterExport.status == from_status)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def run_export(export_id: str) -> None:
    if not _set(export_id, "queued", status="running"):
        return
    with session_scope() as session:
        export = session.get(AdapterExport, export_id)
        adapter = session.get(Adapter, export.adapter_id) if export else None
        if export is None or adapter is None:
            return
        kind, tenant_id = export.kind, export.tenant_id
        adapter_dir = Path(get_storage().path(adapter.storage_key))
        entry = get_base_model(adapter.base_model)
    try:
        with tempfile.TemporaryDirectory(prefix="loraplex-export-") as tmp:
            out = Path(tmp) / "export"
            if kind == "adapter":
                shutil.copytree(adapter_dir, out)
            else:
                if entry is None:
                    raise LookupError(f"base model '{adapter.base_model}' is not available")
                out.mkdir()
                merge_adapter(entry.local_path, adapter_dir, out)
            archive = Path(tmp) / "export.zip"
            zip_folder(out, archive)
            key = f"exports/{tenant_id}/{export_id}.zip"
            with get_storage().writer(key, MAX_EXPORT_BYTES) as writer, archive.open("rb") as f:
                while chunk := f.read(CHUNK):
                    writer.write(chunk)
                blob = writer.commit()
    except Exception as exc:
        log.exception("export %s failed", export_id)
        _set(
            export_id,
            "running",
            status="failed",
            finished_at=now(),
            error={"code": "export_failed", "message": str(exc)[:2000]},
        )
        return
    _set(
        export_id,
        "running",
        status="succeeded",
        finished_at=now(),
        storage_key=blob.key,
        bytes=blob.size,
        sha256=blob.sha256,
    )
