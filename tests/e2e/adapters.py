"""Valid LoRA adapters for the base model without training one: random peft weights saved as
publish.py saves a trained adapter (weights + manifest.json), registered as adapter rows.
For serving tests that need many adapters and no particular behaviour from them."""

import json
import shutil
from pathlib import Path

import torch

from app.catalog.catalog import DEFAULT_MODEL_ID, get_base_model
from app.db import session_scope
from app.kit.ids import new_id
from app.kit.storage import get_storage
from app.kit.templates import served_chat_template_sha256
from app.models import Adapter


def random_lora(out_dir: Path, seed: int = 0, rank: int = 8) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    entry = get_base_model(DEFAULT_MODEL_ID)
    assert entry is not None
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(entry.local_path, dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(base, config)
    with torch.no_grad():  # peft starts B at zero (a no-op adapter); make it change outputs
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.01)
    model.save_pretrained(str(out_dir), save_embedding_layers=False)
    manifest = {
        "base_model_id": DEFAULT_MODEL_ID,
        "chat_template_sha256": served_chat_template_sha256(entry.local_path),
        "seed": seed,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest))
    return out_dir


def register_copies(tenant_id: str, source: Path, count: int) -> list[Adapter]:
    """`count` adapter rows of one tenant, each with its own copy of `source` in storage."""
    storage = get_storage()
    manifest = json.loads((source / "manifest.json").read_text())
    adapters = []
    with session_scope() as session:
        for _ in range(count):
            adapter_id = new_id("adapter")
            key = f"adapters/{tenant_id}/{adapter_id}"
            shutil.copytree(source, storage.path(key))
            adapter = Adapter(
                id=adapter_id,
                tenant_id=tenant_id,
                name=f"ft:{DEFAULT_MODEL_ID}:replicas::{adapter_id[-8:]}",
                base_model=DEFAULT_MODEL_ID,
                storage_key=key,
                manifest=manifest,
            )
            session.add(adapter)
            adapters.append(adapter)
    return adapters
