"""Tenant isolation, generated from the OpenAPI schema: every route that names an object in
its path is called by another tenant with the owner's real ids, and must answer 404 as if the
object did not exist. A new route whose path names a kind of object this file does not know
fails here until its kind is added — so no route escapes the matrix."""

import pytest

from tests.app.test_aliases import BASE, make_adapter
from tests.app.test_evals import ROWS, jsonl
from tests.app.test_evals import upload as upload_eval_file
from tests.app.test_files import upload

# Bodies that get a request past validation to the lookup, per (method, path).
BODIES = {
    ("post", "/v1/uploads/{upload_id}/complete"): {"json": {"part_ids": ["part-0"]}},
    ("post", "/v1/uploads/{upload_id}/parts"): {"files": {"data": ("p", b"{}\n")}},
    ("post", "/v1/aliases/{name}"): {"json": {"base_model": "SmolLM2-135M-Instruct"}},
    ("post", "/v1/aliases/{name}/promote"): {
        "json": {"adapter": "x", "force": True, "reason": "r"}
    },
    ("post", "/v1/adapters/{adapter_id}/exports"): {"json": {"kind": "adapter"}},
    ("post", "/v1/fine_tuning/jobs/{job_id}/decision_report"): {"json": {"eval_files": ["f"]}},
}

# Routes whose object exists but is not ready for its owner yet (no weights on disk for the
# test adapter, an export or a report not produced): the owner gets an answer that is not 200
# but is never the intruder's "no such object" 404 with the same code.
NOT_READY = {
    "/v1/adapters/{adapter_id}/content",
    "/v1/adapters/{adapter_id}/exports/{export_id}/content",
    "/v1/fine_tuning/jobs/{job_id}/decision_report",
}


@pytest.fixture(scope="module")
def schema_paths(client) -> dict:
    return client.get("/openapi.json").json()["paths"]


@pytest.fixture
def owned(client, make_tenant) -> tuple[dict, dict[str, str]]:
    """One object of every kind, owned by one tenant; returns (headers, ids by path param)."""
    tenant_id, key = make_tenant("owner")
    h = {"Authorization": f"Bearer {key}"}
    file_id = upload(client, h).json()["id"]
    upload_id = client.post(
        "/v1/uploads",
        headers=h,
        json={"filename": "t.jsonl", "purpose": "fine-tune", "bytes": 3, "mime_type": "text/jsonl"},
    ).json()["id"]
    job_id = client.post(
        "/v1/fine_tuning/jobs",
        headers=h,
        json={"model": "SmolLM2-135M-Instruct", "training_file": file_id},
    ).json()["id"]
    adapter = make_adapter(tenant_id)
    alias = client.post(
        "/v1/aliases", headers=h, json={"name": "secret-bot", "adapter": adapter.id}
    )
    assert alias.status_code == 200, alias.text
    key_id = client.get("/v1/api_keys", headers=h).json()["data"][0]["id"]
    eval_file = upload_eval_file(client, h, jsonl(ROWS))
    run = client.post(
        "/v1/eval_runs",
        headers=h,
        json={"eval_file": eval_file["id"], "candidate": {"model": BASE}},
    )
    assert run.status_code == 200, run.text
    export = client.post(f"/v1/adapters/{adapter.id}/exports", headers=h, json={"kind": "adapter"})
    assert export.status_code == 200, export.text
    ids = {
        "file_id": file_id,
        "upload_id": upload_id,
        "fine_tuning_job_id": job_id,
        "job_id": job_id,
        "run_id": run.json()["id"],
        "export_id": export.json()["id"],
        "adapter_id": adapter.id,
        "model_id": adapter.name,
        "name": "secret-bot",
        "key_id": key_id,
    }
    return h, ids


def _routes(paths: dict) -> list[tuple[str, str]]:
    return sorted(
        (method, path)
        for path, operations in paths.items()
        if "{" in path
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    )


def _fill(path: str, ids: dict[str, str]) -> str:
    out = path
    for param in [p.split("}")[0].split(":")[0] for p in path.split("{")[1:]]:
        assert param in ids, f"{path}: add an object of kind '{param}' to the isolation matrix"
        out = out.replace("{" + param + "}", ids[param])
    return out


def test_every_object_route_is_404_for_another_tenant(client, make_tenant, owned, schema_paths):
    owner_headers, ids = owned
    _, other_key = make_tenant("intruder")
    intruder = {"Authorization": f"Bearer {other_key}"}
    routes = _routes(schema_paths)
    assert len(routes) >= 15  # the schema really lists the object routes

    for method, path in routes:
        url = _fill(path, ids)
        # The owner reaches every object it can read (so the ids above are the real ones).
        mine = client.get(url, headers=owner_headers) if method == "get" else None
        r = client.request(method.upper(), url, headers=intruder, **BODIES.get((method, path), {}))
        assert r.status_code == 404, f"{method.upper()} {path} as another tenant: {r.status_code}"
        error = r.json()["error"]
        if mine is not None and path in NOT_READY and mine.status_code != 200:
            assert (mine.status_code, mine.json()["error"]["code"]) != (404, error["code"]), path
        elif mine is not None:
            assert mine.status_code == 200, f"owner GET {url}: {mine.status_code} {mine.text}"
        assert set(error) == {"message", "type", "param", "code"}
        for secret in (ids["adapter_id"], ids["file_id"]):
            assert secret not in r.text or secret in url  # nothing else of the owner's leaks

    # ...and the intruder's attempts changed nothing the owner sees.
    assert client.get(f"/v1/files/{ids['file_id']}", headers=owner_headers).status_code == 200
    alias = client.get("/v1/aliases/secret-bot", headers=owner_headers).json()
    assert alias["target"]["adapter_id"] == ids["adapter_id"]
    assert client.get("/v1/me", headers=owner_headers).status_code == 200


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/fine_tuning/jobs", "training_file"),
        ("/v1/fine_tuning/jobs", "validation_file"),
        ("/v1/aliases", "adapter"),
    ],
)
def test_foreign_ids_in_bodies_are_404(client, make_tenant, owned, path, field):
    _, ids = owned
    _, other_key = make_tenant("intruder")
    intruder = {"Authorization": f"Bearer {other_key}"}
    own_file = upload(client, intruder).json()["id"]
    bodies = {
        "training_file": {"model": "SmolLM2-135M-Instruct", "training_file": ids["file_id"]},
        "validation_file": {
            "model": "SmolLM2-135M-Instruct",
            "training_file": own_file,
            "validation_file": ids["file_id"],
        },
        "adapter": {"name": "stolen", "adapter": ids["adapter_id"]},
    }
    r = client.post(path, headers=intruder, json=bodies[field])
    assert r.status_code == 404, r.text
