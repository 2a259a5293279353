"""Aliases through the API: create, list, retrieve, repoint, rollback, delete; name rules;
tenant isolation; aliases in /v1/models; vLLM's admin routes are not ours to reach."""

import pytest

from app.catalog.catalog import get_base_model
from app.db import session_scope
from app.kit.ids import new_id
from app.kit.templates import served_chat_template_sha256
from app.models import Adapter

BASE = "SmolLM2-135M-Instruct"


def make_adapter(tenant_id: str, template_sha256: str | None = "served", **fields) -> Adapter:
    """An adapter row as publish.py writes it (no weights: these tests never reach vLLM)."""
    if template_sha256 == "served":
        entry = get_base_model(BASE)
        assert entry is not None
        template_sha256 = served_chat_template_sha256(entry.local_path)
    adapter_id = new_id("adapter")
    adapter = Adapter(
        id=adapter_id,
        tenant_id=tenant_id,
        name=f"ft:{BASE}:t:{adapter_id[-8:]}",
        base_model=BASE,
        storage_key=f"adapters/{tenant_id}/{adapter_id}",
        manifest={"chat_template_sha256": template_sha256, "seed": 1},
        **fields,
    )
    with session_scope() as session:
        session.add(adapter)
    return adapter


@pytest.fixture
def owner(make_tenant):
    tenant_id, key = make_tenant("own")
    return tenant_id, {"Authorization": f"Bearer {key}"}


@pytest.fixture
def stranger(make_tenant):
    tenant_id, key = make_tenant("str")
    return tenant_id, {"Authorization": f"Bearer {key}"}


def test_create_points_at_an_adapter_by_name_or_id(client, owner):
    tenant_id, h = owner
    v1, v2 = make_adapter(tenant_id), make_adapter(tenant_id)
    r = client.post("/v1/aliases", headers=h, json={"name": "support-bot", "adapter": v1.name})
    assert r.status_code == 200, r.text
    alias = r.json()
    assert alias["object"] == "alias" and alias["name"] == "support-bot"
    assert alias["target"] == {"adapter_id": v1.id, "model": v1.name, "system_prompt": None}
    assert alias["previous"] is None and alias["version"] == 1
    r = client.post("/v1/aliases", headers=h, json={"name": "support-bot@prod", "adapter": v2.id})
    assert r.json()["target"]["adapter_id"] == v2.id


def test_alias_to_a_base_model_with_a_system_prompt(client, owner):
    _, h = owner
    body = {"name": "pirate", "base_model": BASE, "system_prompt": "Talk like a pirate."}
    alias = client.post("/v1/aliases", headers=h, json=body).json()
    assert alias["target"] == {
        "adapter_id": None,
        "model": BASE,
        "system_prompt": body["system_prompt"],
    }


def test_repoint_keeps_the_previous_target_and_rollback_swaps_back(client, owner):
    tenant_id, h = owner
    v1, v2 = make_adapter(tenant_id), make_adapter(tenant_id)
    client.post("/v1/aliases", headers=h, json={"name": "bot", "adapter": v1.id})
    r = client.post("/v1/aliases/bot", headers=h, json={"adapter": v2.id})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["target"]["adapter_id"] == v2.id and moved["previous"]["adapter_id"] == v1.id
    assert moved["version"] == 2
    back = client.post("/v1/aliases/bot/rollback", headers=h).json()
    assert back["target"]["adapter_id"] == v1.id and back["previous"]["adapter_id"] == v2.id
    assert back["version"] == 3
    assert client.get("/v1/aliases/bot", headers=h).json()["target"]["adapter_id"] == v1.id


def test_repoint_between_adapter_and_base_model(client, owner):
    tenant_id, h = owner
    v1 = make_adapter(tenant_id)
    client.post("/v1/aliases", headers=h, json={"name": "mixed", "adapter": v1.id})
    r = client.post(
        "/v1/aliases/mixed", headers=h, json={"base_model": BASE, "system_prompt": "Be brief."}
    ).json()
    assert r["target"]["model"] == BASE and r["previous"]["adapter_id"] == v1.id
    back = client.post("/v1/aliases/mixed/rollback", headers=h).json()
    assert back["target"]["adapter_id"] == v1.id
    assert back["previous"] == {"adapter_id": None, "model": BASE, "system_prompt": "Be brief."}


def test_rollback_without_a_previous_target_is_409(client, owner):
    _, h = owner
    client.post("/v1/aliases", headers=h, json={"name": "fresh", "base_model": BASE})
    r = client.post("/v1/aliases/fresh/rollback", headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_previous_target"


def test_list_and_delete(client, owner):
    _, h = owner
    for name in ("b-alias", "a-alias"):
        client.post("/v1/aliases", headers=h, json={"name": name, "base_model": BASE})
    listed = client.get("/v1/aliases", headers=h).json()
    assert [a["name"] for a in listed["data"]] == ["a-alias", "b-alias"]
    deleted = client.delete("/v1/aliases/a-alias", headers=h).json()
    assert deleted["deleted"] is True and deleted["name"] == "a-alias"
    assert client.get("/v1/aliases/a-alias", headers=h).status_code == 404
    assert [a["name"] for a in client.get("/v1/aliases", headers=h).json()["data"]] == ["b-alias"]


def test_duplicate_name_is_409(client, owner):
    _, h = owner
    client.post("/v1/aliases", headers=h, json={"name": "dup", "base_model": BASE})
    r = client.post("/v1/aliases", headers=h, json={"name": "dup", "base_model": BASE})
    assert r.status_code == 409 and r.json()["error"]["code"] == "alias_exists"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../etc",
        "a/b",
        "a\\b",
        ".hidden",
        "-dash",
        "x" * 65,
        "bot@" + "p" * 33,
        "bot@",
        "bot@@prod",
        "ft:base:x",
        "white space",
        "bøt",
        "%2e%2e",
    ],
)
def test_invalid_names_are_400_naming_the_param(client, owner, name):
    _, h = owner
    r = client.post("/v1/aliases", headers=h, json={"name": name, "base_model": BASE})
    assert r.status_code == 400, name
    assert r.json()["error"]["param"] == "name"


def test_a_base_model_id_is_not_an_alias_name(client, owner):
    _, h = owner
    r = client.post("/v1/aliases", headers=h, json={"name": BASE, "base_model": BASE})
    assert r.status_code == 400 and r.json()["error"]["code"] == "alias_name_reserved"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "t"},
        {"name": "t", "adapter": "x", "base_model": BASE},
        {"name": "t", "base_model": BASE, "lora_path": "/etc"},
        {"name": "t", "base_model": BASE, "system_prompt": "x" * 32_001},
    ],
)
def test_invalid_targets_are_400(client, owner, body):
    _, h = owner
    assert client.post("/v1/aliases", headers=h, json=body).status_code == 400


def test_unknown_base_model_is_400(client, owner):
    _, h = owner
    r = client.post("/v1/aliases", headers=h, json={"name": "t", "base_model": "gpt-9"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "base_model"


def test_another_tenants_adapter_cannot_be_targeted_even_by_id(client, owner, stranger):
    tenant_id, _ = owner
    theirs = make_adapter(tenant_id)
    _, h = stranger
    for ref in (theirs.id, theirs.name):
        r = client.post("/v1/aliases", headers=h, json={"name": "steal", "adapter": ref})
        assert r.status_code == 404 and r.json()["error"]["code"] == "adapter_not_found"
    assert client.get("/v1/aliases", headers=h).json()["data"] == []


def test_another_tenants_alias_is_invisible(client, owner, stranger):
    tenant_id, h = owner
    v1 = make_adapter(tenant_id)
    client.post("/v1/aliases", headers=h, json={"name": "private", "adapter": v1.id})
    _, sh = stranger
    for method, path, body in [
        ("GET", "/v1/aliases/private", None),
        ("POST", "/v1/aliases/private", {"base_model": BASE}),
        ("POST", "/v1/aliases/private/rollback", None),
        ("DELETE", "/v1/aliases/private", None),
    ]:
        assert client.request(method, path, headers=sh, json=body).status_code == 404
    chat = client.post(
        "/v1/chat/completions",
        headers=sh,
        json={"model": "private", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 404 and chat.json()["error"]["code"] == "model_not_found"
    assert "private" not in [m["id"] for m in client.get("/v1/models", headers=sh).json()["data"]]
    # …and the same name is free for the other tenant.
    r = client.post("/v1/aliases", headers=sh, json={"name": "private", "base_model": BASE})
    assert r.status_code == 200
    assert client.get("/v1/aliases/private", headers=h).json()["target"]["adapter_id"] == v1.id


def test_an_adapter_with_another_chat_template_cannot_be_aliased(client, owner):
    tenant_id, h = owner
    stale = make_adapter(tenant_id, template_sha256="0" * 64)
    r = client.post("/v1/aliases", headers=h, json={"name": "stale", "adapter": stale.id})
    assert r.status_code == 409 and r.json()["error"]["code"] == "chat_template_mismatch"
    assert r.json()["error"]["param"] == "adapter"


def test_models_lists_aliases_with_their_current_parent(client, owner):
    tenant_id, h = owner
    v1 = make_adapter(tenant_id)
    client.post("/v1/aliases", headers=h, json={"name": "listed", "adapter": v1.id})
    client.post("/v1/aliases", headers=h, json={"name": "listed-base", "base_model": BASE})
    models = {m["id"]: m for m in client.get("/v1/models", headers=h).json()["data"]}
    assert models["listed"]["parent"] == v1.name and models[v1.name]["parent"] == BASE
    assert models["listed-base"]["parent"] == BASE
    assert client.get("/v1/models/listed", headers=h).json()["id"] == "listed"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize(
    "path", ["/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/v1/../v1/load_lora_adapter"]
)
def test_vllm_admin_routes_are_404(client, owner, method, path):
    _, h = owner
    body = {"lora_name": "x", "lora_path": "/etc"} if method != "GET" else None
    r = client.request(method, path, headers=h, json=body)
    assert r.status_code == 404, (method, path, r.status_code)
    assert r.json()["error"]["code"] in ("unknown_url", "not_found")
