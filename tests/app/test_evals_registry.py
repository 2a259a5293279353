"""The adapter registry: lineage on retrieve, delete refused while an alias needs the version,
the zip download, and exports (the adapter alone, or merged into the base weights) made by
the worker's export task run in-process on a real peft adapter of SmolLM2-135M."""

import io
import json
import zipfile
from pathlib import Path

import pytest

from app.catalog.catalog import get_base_model
from app.db import session_scope
from app.kit.storage import get_storage
from app.models import AdapterExport
from tests.app.test_aliases import BASE, make_adapter
from worker.tasks.evals import export_adapter

LINEAGE_MANIFEST = {
    "dataset_sha256": "d" * 64,
    "validation_sha256": None,
    "base_model_id": BASE,
    "base_weights_sha256": "b" * 64,
    "hyperparameters": {"n_epochs": 1, "lora_r": 4},
}


@pytest.fixture
def owner(make_tenant):  # type: ignore[no-untyped-def]
    tenant_id, key = make_tenant("reg")
    return tenant_id, {"Authorization": f"Bearer {key}"}


def real_adapter(tenant_id: str):  # type: ignore[no-untyped-def]
    """An adapter row whose folder holds a real peft LoRA of the base model (random B, so
    merging changes the weights)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapter = make_adapter(tenant_id)
    folder = get_storage().path(adapter.storage_key)
    entry = get_base_model(BASE)
    assert entry is not None
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(entry.local_path, dtype=torch.float32)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(folder)
    manifest = {**adapter.manifest, **LINEAGE_MANIFEST}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with session_scope() as session:
        session.merge(adapter).manifest = manifest
    return adapter


def test_retrieve_shows_lineage_and_the_aliases_pointing_at_it(client, owner):
    tenant_id, h = owner
    adapter = make_adapter(tenant_id)
    with session_scope() as session:
        row = session.merge(adapter)
        row.manifest = {**row.manifest, **LINEAGE_MANIFEST}
    client.post("/v1/aliases", headers=h, json={"name": "reg-bot", "adapter": adapter.id})
    body = client.get(f"/v1/adapters/{adapter.id}", headers=h).json()
    assert body["aliases"] == ["reg-bot"]
    lineage = body["lineage"]
    assert lineage["dataset_sha256"] == "d" * 64
    assert lineage["base_model_id"] == BASE and lineage["base_model_revision"] == "b" * 64
    assert lineage["hyperparameters"] == {"n_epochs": 1, "lora_r": 4}
    assert lineage["fine_tuning_job_id"] is None and lineage["training_file"] is None


def test_delete_is_refused_while_an_alias_needs_the_version(client, owner):
    tenant_id, h = owner
    v1, v2 = make_adapter(tenant_id), make_adapter(tenant_id)
    folder = get_storage().path(v1.storage_key)
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    client.post("/v1/aliases", headers=h, json={"name": "del-bot", "adapter": v1.id})
    r = client.delete(f"/v1/adapters/{v1.id}", headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "adapter_in_use"
    client.post("/v1/aliases/del-bot", headers=h, json={"adapter": v2.id})
    r = client.delete(f"/v1/adapters/{v1.id}", headers=h)  # still the rollback target
    assert r.status_code == 409 and "del-bot" in r.json()["error"]["message"]
    client.delete("/v1/aliases/del-bot", headers=h)
    r = client.delete(f"/v1/adapters/{v1.id}", headers=h)
    assert r.status_code == 200 and r.json() == {"id": v1.id, "object": "adapter", "deleted": True}
    assert client.get(f"/v1/adapters/{v1.id}", headers=h).status_code == 404
    assert v1.id not in [a["id"] for a in client.get("/v1/adapters", headers=h).json()["data"]]
    assert not folder.exists()
    actions = [e["action"] for e in client.get("/v1/audit_events", headers=h).json()["data"]]
    assert "adapter.delete" in actions
    r = client.post("/v1/aliases", headers=h, json={"name": "again", "adapter": v1.id})
    assert r.status_code == 404


def test_another_tenant_cannot_delete_download_or_export(client, owner, make_tenant):
    adapter = make_adapter(owner[0])
    _, key = make_tenant("reg-x")
    h = {"Authorization": f"Bearer {key}"}
    assert client.delete(f"/v1/adapters/{adapter.id}", headers=h).status_code == 404
    assert client.get(f"/v1/adapters/{adapter.id}/content", headers=h).status_code == 404
    r = client.post(f"/v1/adapters/{adapter.id}/exports", headers=h, json={"kind": "adapter"})
    assert r.status_code == 404


@pytest.fixture
def peft_adapter(owner):  # type: ignore[no-untyped-def]
    return real_adapter(owner[0])


def test_download_is_a_zip_of_the_adapter_with_its_lineage(client, owner, peft_adapter):
    r = client.get(f"/v1/adapters/{peft_adapter.id}/content", headers=owner[1])
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(z.namelist())
    assert {"adapter_config.json", "adapter_model.safetensors", "manifest.json"} <= names
    assert json.loads(z.read("lineage.json"))["dataset_sha256"] == "d" * 64
    assert "decision_report.json" not in names  # the job has no report


def export(client, h, adapter_id: str, kind: str) -> dict:  # type: ignore[no-untyped-def]
    r = client.post(f"/v1/adapters/{adapter_id}/exports", headers=h, json={"kind": kind})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "queued"
    export_id = r.json()["id"]
    r = client.get(f"/v1/adapters/{adapter_id}/exports/{export_id}/content", headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "export_not_ready"
    export_adapter(export_id)  # the gpu worker's task, run here
    return dict(client.get(f"/v1/adapters/{adapter_id}/exports/{export_id}", headers=h).json())


def test_merged_export_is_safetensors_equal_to_base_plus_adapter(
    client, owner, peft_adapter, tmp_path: Path
):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    h = owner[1]
    done = export(client, h, peft_adapter.id, "merged")
    assert done["status"] == "succeeded", done["error"]
    r = client.get(f"/v1/adapters/{peft_adapter.id}/exports/{done['id']}/content", headers=h)
    assert len(r.content) == done["bytes"]
    zipfile.ZipFile(io.BytesIO(r.content)).extractall(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "manifest.json").exists()
    assert not (tmp_path / "adapter_config.json").exists()
    entry = get_base_model(BASE)
    assert entry is not None
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    merged = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(entry.local_path, dtype=torch.float32)
    plain = base(ids).logits
    with_adapter = PeftModel.from_pretrained(base, get_storage().path(peft_adapter.storage_key))(
        ids
    ).logits
    # The merged weights are saved in the base checkpoint's dtype (bf16), so they match the
    # adapter up to rounding, far closer than the base alone does.
    merged_gap = (merged(ids).logits - with_adapter).abs().mean()
    base_gap = (plain - with_adapter).abs().mean()
    assert base_gap > 0.1 and merged_gap < base_gap / 10, (merged_gap, base_gap)


def test_adapter_only_export_and_a_failed_export(client, owner, peft_adapter):
    h = owner[1]
    done = export(client, h, peft_adapter.id, "adapter")
    assert done["status"] == "succeeded" and done["kind"] == "adapter"
    r = client.get(f"/v1/adapters/{peft_adapter.id}/exports/{done['id']}/content", headers=h)
    assert "adapter_model.safetensors" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    empty = make_adapter(owner[0])  # no files: merging must fail, not hang
    failed = export(client, h, empty.id, "merged")
    assert failed["status"] == "failed" and failed["error"]["code"] == "export_failed"
    with session_scope() as session:
        assert session.get(AdapterExport, failed["id"]).storage_key is None
