"""Benchmark adapters: valid peft LoRA adapters for the served base model with random weights
(r=16, all linear layers, B given small random values so they change the outputs), written
where publish.py puts trained ones and registered as `adapters` rows of one tenant.

Runs in the app+worker virtualenv (torch, peft); the gateway and vLLM only ever see the files."""

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.adapters import repository as adapters_repo
from app.catalog.catalog import get_base_model
from app.db import session_scope
from app.kit.ids import new_id
from app.kit.storage import get_storage
from app.models import Adapter
from app.ratelimits import service as ratelimits
from app.tenants.service import create_tenant
from worker.training.manifest import build_manifest

LORA_R = 16
B_STD = 0.02  # large enough to change greedy answers, small enough to keep them fluent


@dataclass(frozen=True)
class BenchTenant:
    id: str
    key: str
    adapters: list[dict[str, str]]  # {"id", "name"}


def create_bench_tenant(base_model: str, count: int, seed: int = 0) -> BenchTenant:
    """A tenant without practical rate limits, owning `count` random adapters."""
    with session_scope() as session:
        tenant, key = create_tenant(session, f"servebench-{secrets.token_hex(3)}")
        ratelimits.set_limits(session, tenant.id, 10_000_000, 10_000_000_000)
        tenant_id = tenant.id
    adapters = write_adapters(tenant_id, base_model, count, seed)
    return BenchTenant(tenant_id, key, adapters)


def write_adapters(tenant_id: str, base_model: str, count: int, seed: int) -> list[dict[str, str]]:
    entry = get_base_model(base_model)
    if entry is None:
        raise SystemExit(f"{base_model} is not in the catalog")
    model_dir = entry.local_path
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=LORA_R, lora_alpha=2 * LORA_R, lora_dropout=0.0, target_modules="all-linear"
    )
    model = get_peft_model(base, config)
    storage = get_storage()
    out: list[dict[str, str]] = []
    for index in range(count):
        generator = torch.Generator().manual_seed(seed * 10_000 + index)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_A" in name:
                    param.copy_(
                        torch.randn(param.shape, generator=generator) / param.shape[1] ** 0.5
                    )
                elif "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * B_STD)
        adapter_id = new_id("adapter")
        key = f"adapters/{tenant_id}/{adapter_id}"
        target = storage.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(target), save_embedding_layers=False)
        manifest = build_manifest(
            seed=seed * 10_000 + index,
            base_model_id=base_model,
            base_model_path=model_dir,
            dataset_sha256="0" * 64,  # random weights: no training data
            hyperparameters={"lora_r": LORA_R, "lora_alpha": 2 * LORA_R, "init": "random"},
            chat_template=tokenizer.chat_template,
            trained_tokens=0,
            final_train_loss=None,
        )
        (Path(target) / "manifest.json").write_text(json.dumps(manifest, indent=2))
        name = f"ft:{base_model}:bench:{adapter_id[-8:]}"
        with session_scope() as session:
            adapters_repo.add(
                session,
                Adapter(
                    id=adapter_id,
                    tenant_id=tenant_id,
                    name=name,
                    base_model=base_model,
                    storage_key=key,
                    manifest=manifest,
                ),
            )
        out.append({"id": adapter_id, "name": name})
    return out
