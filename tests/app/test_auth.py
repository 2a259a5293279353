from sqlalchemy import select

from app.db import session_scope
from app.models import ApiKey


def test_missing_key_is_401_in_openai_shape(client):
    r = client.get("/v1/files")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "missing_api_key"
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_wrong_key_is_401(client):
    r = client.get("/v1/models", headers={"Authorization": "Bearer lpx-not-a-real-key"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"


def test_non_bearer_scheme_is_401(client, tenant):
    raw = tenant["Authorization"].split()[1]
    r = client.get("/v1/models", headers={"Authorization": f"Basic {raw}"})
    assert r.status_code == 401


def test_me_names_the_keys_tenant(client, make_tenant):
    tenant_id, key = make_tenant("me")
    r = client.get("/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    assert r.json()["id"] == tenant_id


def test_keys_are_stored_only_as_hashes(make_tenant):
    tenant_id, key = make_tenant()
    with session_scope() as session:
        stored = session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id)).one()
        assert stored.key_hash != key and key not in stored.key_hash
        assert key.startswith(stored.prefix)
