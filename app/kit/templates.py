"""The sha256 of a base model's chat template, computed the way the training manifest does
(`worker/training/manifest.py`): over the template text, or over the sorted JSON of several
named templates. Read from `chat_template.jinja`, else from `tokenizer_config.json`."""

import hashlib
import json
from functools import lru_cache
from pathlib import Path


def template_sha256(template: str | dict[str, str] | list[dict[str, str]]) -> str:
    if isinstance(template, list):  # tokenizer_config's [{"name", "template"}, …]
        template = {t["name"]: t["template"] for t in template}
    if isinstance(template, dict):
        template = json.dumps(template, sort_keys=True)
    return hashlib.sha256(template.encode("utf-8")).hexdigest()


@lru_cache(maxsize=64)
def served_chat_template_sha256(model_dir: Path) -> str | None:
    """None when the model directory is not visible from here (then nothing can be checked)."""
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return template_sha256(jinja.read_text(encoding="utf-8"))
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        if template:
            return template_sha256(template)
    return None
