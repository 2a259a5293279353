"""API keys: shown once, listed without the secret, scoped, revoked, rotated with no gap, and
every change in the audit log."""

import pytest


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_new_key_is_shown_once_and_listed_without_its_secret(client, tenant):
    created = client.post("/v1/api_keys", headers=tenant, json={"name": "ci"})
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["key"].startswith(body["prefix"]) and body["scopes"] == ["all"]

    listed = client.get("/v1/api_keys", headers=tenant).json()["data"]
    assert [k["name"] for k in listed][:1] == ["ci"]
    assert all("key" not in k for k in listed)
    assert body["key"] not in str(listed)
    assert client.get("/v1/me", headers=bearer(body["key"])).status_code == 200


def test_rotation_has_no_gap_and_the_old_key_stops_working(client, tenant):
    new = client.post("/v1/api_keys", headers=tenant, json={"name": "rotated"}).json()
    old_id = client.get("/v1/api_keys", headers=bearer(new["key"])).json()["data"][-1]["id"]
    # both keys work until the old one is revoked
    assert client.get("/v1/files", headers=tenant).status_code == 200
    assert client.get("/v1/files", headers=bearer(new["key"])).status_code == 200

    revoked = client.delete(f"/v1/api_keys/{old_id}", headers=bearer(new["key"]))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    gone = client.get("/v1/files", headers=tenant)
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_api_key"
    assert client.get("/v1/files", headers=bearer(new["key"])).status_code == 200

    actions = [
        e["action"]
        for e in client.get("/v1/audit_events", headers=bearer(new["key"])).json()["data"]
    ]
    assert actions == ["api_key.revoke", "api_key.create"]


def test_the_last_full_access_key_cannot_be_revoked(client, tenant):
    only = client.get("/v1/api_keys", headers=tenant).json()["data"][0]["id"]
    r = client.delete(f"/v1/api_keys/{only}", headers=tenant)
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_admin_key"
    assert client.get("/v1/me", headers=tenant).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/models", True),
        ("GET", "/v1/models/SmolLM2-135M-Instruct", True),
        ("GET", "/v1/me", True),
        ("GET", "/v1/files", False),
        ("GET", "/v1/fine_tuning/jobs", False),
        ("GET", "/v1/api_keys", False),
        ("POST", "/v1/api_keys", False),
        ("GET", "/v1/usage", False),
    ],
)
def test_an_inference_key_reaches_only_serving_routes(client, tenant, method, path, allowed):
    key = client.post("/v1/api_keys", headers=tenant, json={"scopes": ["inference"]}).json()["key"]
    r = client.request(method, path, headers=bearer(key), json={} if method == "POST" else None)
    if allowed:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 403
        assert r.json()["error"]["type"] == "permission_error"
        assert r.json()["error"]["code"] == "insufficient_scope"


def test_an_inference_key_may_ask_for_completions(client, tenant):
    key = client.post("/v1/api_keys", headers=tenant, json={"scopes": ["inference"]}).json()["key"]
    # Past authorization: the unknown model is the request's own problem, not the key's.
    r = client.post(
        "/v1/chat/completions",
        headers=bearer(key),
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_unknown_scopes_and_foreign_keys(client, tenant, other_tenant):
    bad = client.post("/v1/api_keys", headers=tenant, json={"scopes": ["root"]})
    assert bad.status_code == 400 and bad.json()["error"]["param"].startswith("scopes")
    mine = client.get("/v1/api_keys", headers=tenant).json()["data"][0]["id"]
    r = client.delete(f"/v1/api_keys/{mine}", headers=other_tenant)
    assert r.status_code == 404 and r.json()["error"]["code"] == "api_key_not_found"
    assert client.get("/v1/me", headers=tenant).status_code == 200


def test_the_serving_routes_stop_honouring_a_revoked_key_at_once(client, tenant):
    """The completion routes remember a resolved key for a moment (app/auth/callers.py);
    revoking it clears that memory when the revocation commits."""
    new = client.post("/v1/api_keys", headers=tenant, json={"name": "serving"}).json()
    old_id = client.get("/v1/api_keys", headers=bearer(new["key"])).json()["data"][-1]["id"]
    body = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
    seen = client.post("/v1/chat/completions", headers=tenant, json=body)
    assert seen.status_code == 404  # authenticated (and remembered); the model is unknown
    assert client.delete(f"/v1/api_keys/{old_id}", headers=bearer(new["key"])).status_code == 200
    gone = client.post("/v1/chat/completions", headers=tenant, json=body)
    assert gone.status_code == 401 and gone.json()["error"]["code"] == "invalid_api_key"


def test_the_serving_routes_see_changed_rate_limits_at_once(client, make_tenant):
    """Limits are remembered with the key; changing them clears that memory on commit."""
    from app.db import session_scope
    from app.ratelimits import service as ratelimits

    tenant_id, key = make_tenant("limits")
    body = {"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "hi"}]}
    # No inference server behind this app: admitted, then 503. The caller is now remembered
    # with the default limits (hundreds of requests a minute).
    first = client.post("/v1/chat/completions", headers=bearer(key), json=body)
    assert first.status_code == 503, first.text
    with session_scope() as session:
        ratelimits.set_limits(session, tenant_id, 1, None)
    codes = [
        client.post("/v1/chat/completions", headers=bearer(key), json=body).status_code
        for _ in range(2)
    ]
    assert codes[-1] == 429, codes  # a stale default would have let both through
