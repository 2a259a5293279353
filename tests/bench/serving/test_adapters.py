"""The benchmark's random adapters are real, servable adapters: peft loads them, they change
the base model's output, and their rows pass the gateway's serving checks."""

import json

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from app.adapters.service import check_servable
from app.catalog.catalog import get_base_model
from app.db import session_scope
from app.kit.storage import get_storage
from app.models import Adapter
from bench.serving.adapters import create_bench_tenant

BASE = "SmolLM2-135M-Instruct"


def test_random_adapters_are_registered_servable_and_change_outputs():
    tenant = create_bench_tenant(BASE, 2, seed=3)
    assert len(tenant.adapters) == 2
    with session_scope() as session:
        rows = [session.get(Adapter, a["id"]) for a in tenant.adapters]
        for row in rows:
            assert row is not None and row.tenant_id == tenant.id
            check_servable(row)  # ready, and the chat template matches the served one
        paths = [get_storage().path(row.storage_key) for row in rows if row is not None]

    config = json.loads((paths[0] / "adapter_config.json").read_text())
    assert config["r"] == 16 and "q_proj" in config["target_modules"]
    assert (paths[0] / "manifest.json").is_file()
    assert not any("embed" in p.name for p in paths[0].iterdir())

    entry = get_base_model(BASE)
    assert entry is not None
    base = AutoModelForCausalLM.from_pretrained(entry.local_path, dtype=torch.float32)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        plain = base(ids).logits
        outputs = []
        for path in paths:
            model = PeftModel.from_pretrained(base, str(path))
            outputs.append(model(ids).logits)
            base = model.unload()
    assert not torch.allclose(plain, outputs[0], atol=1e-3)
    assert not torch.allclose(outputs[0], outputs[1], atol=1e-3)
