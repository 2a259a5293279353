"""The adapter's manifest: everything needed to say what an adapter was trained from and how,
as plain JSON (it is stored next to the adapter and in the database)."""

import hashlib
import json
import platform
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

MANIFEST_VERSION = 1
CHUNK_BYTES = 8 * 1024 * 1024
VERSIONED_LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes")


def build_manifest(
    *,
    seed: int,
    base_model_id: str,
    base_model_path: str | Path,
    dataset_sha256: str,
    hyperparameters: dict[str, Any],
    chat_template: str | dict[str, str] | None,
    trained_tokens: int,
    final_train_loss: float | None,
    validation_sha256: str | None = None,
    data: dict[str, Any] | None = None,
    created_at: int | None = None,
    method: str = "supervised",
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """`data`: how the uploaded file became the rows trained on (options, rows dropped, the
    final dataset's sha256); absent keys mean the file was used as uploaded."""
    weight_files = safetensors_files(Path(base_model_path))
    return {
        "manifest_version": MANIFEST_VERSION,
        "created_at": int(time.time()) if created_at is None else created_at,
        "seed": seed,
        "method": method,
        "base_model_id": base_model_id,
        "base_weights_sha256": sha256_of_files(weight_files),
        "base_weights_files": [path.name for path in weight_files],
        "dataset_sha256": dataset_sha256,
        "validation_sha256": validation_sha256,
        "data": data or {"final_dataset_sha256": dataset_sha256},
        "chat_template_sha256": chat_template_sha256(chat_template),
        "hyperparameters": hyperparameters,
        "library_versions": library_versions(),
        "trained_tokens": trained_tokens,
        "final_train_loss": final_train_loss,
        "stop_reason": stop_reason,
    }


def safetensors_files(model_dir: Path) -> list[Path]:
    files = sorted(model_dir.glob("*.safetensors"), key=lambda path: path.name)
    if not files:
        raise FileNotFoundError(f"no *.safetensors weights in {model_dir}")
    return files


def sha256_of_files(paths: Iterable[Path]) -> str:
    """One digest over the files' bytes, concatenated in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


def sha256_of_file(path: str | Path) -> str:
    return sha256_of_files([Path(path)])


def chat_template_sha256(chat_template: str | dict[str, str] | None) -> str | None:
    if chat_template is None:
        return None
    if isinstance(chat_template, dict):  # several named templates
        chat_template = json.dumps(chat_template, sort_keys=True)
    return hashlib.sha256(chat_template.encode("utf-8")).hexdigest()


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
