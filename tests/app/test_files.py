import hashlib
import json

from sqlalchemy import func, select

from app.config import get_settings
from app.db import session_scope
from app.models import File

ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
BODY = (json.dumps(ROW) + "\n").encode() * 3


def upload(client, headers, body=BODY, name="train.jsonl", purpose="fine-tune"):
    return client.post(
        "/v1/files", headers=headers, data={"purpose": purpose}, files={"file": (name, body)}
    )


def test_upload_stores_bytes_and_sha256(client, tenant):
    r = upload(client, tenant)
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["object"] == "file" and f["purpose"] == "fine-tune" and f["bytes"] == len(BODY)
    assert f["sha256"] == hashlib.sha256(BODY).hexdigest()
    content = client.get(f"/v1/files/{f['id']}/content", headers=tenant)
    assert content.content == BODY


def test_upload_keeps_only_the_base_name(client, tenant):
    r = upload(client, tenant, name="../../etc/passwd.jsonl")
    assert r.json()["filename"] == "passwd.jsonl"


def test_list_paginates_newest_first(client, tenant):
    ids = [upload(client, tenant).json()["id"] for _ in range(3)]
    first = client.get("/v1/files?limit=2", headers=tenant).json()
    assert [f["id"] for f in first["data"]] == ids[::-1][:2] and first["has_more"]
    rest = client.get(f"/v1/files?limit=2&after={first['data'][-1]['id']}", headers=tenant).json()
    assert [f["id"] for f in rest["data"]] == [ids[0]] and not rest["has_more"]


def test_bad_purpose_is_rejected(client, tenant):
    r = upload(client, tenant, purpose="assistants")
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"


def test_empty_file_is_rejected(client, tenant):
    r = upload(client, tenant, body=b"")
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_file"


def test_oversized_upload_leaves_no_row_and_no_blob(client, tenant, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 100)
    with session_scope() as session:
        before = session.scalar(select(func.count()).select_from(File))
    r = upload(client, tenant, body=b"x" * 1000)
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(File)) == before
    leftovers = [p for p in get_settings().storage_dir.rglob(".partial-*")]
    assert leftovers == []


def test_delete_removes_row_and_blob(client, tenant):
    f = upload(client, tenant).json()
    r = client.delete(f"/v1/files/{f['id']}", headers=tenant)
    assert r.json() == {"id": f["id"], "object": "file", "deleted": True}
    assert client.get(f"/v1/files/{f['id']}", headers=tenant).status_code == 404
    assert not list(get_settings().storage_dir.rglob(f["id"]))


def test_other_tenant_gets_404_for_every_file_route(client, tenant, other_tenant):
    fid = upload(client, tenant).json()["id"]
    for method, path in [
        ("GET", f"/v1/files/{fid}"),
        ("GET", f"/v1/files/{fid}/content"),
        ("GET", f"/v1/files/{fid}/report"),
        ("DELETE", f"/v1/files/{fid}"),
    ]:
        r = client.request(method, path, headers=other_tenant)
        assert r.status_code == 404, (method, path)
        assert r.json()["error"]["code"] == "file_not_found"
    listed = client.get("/v1/files", headers=other_tenant).json()["data"]
    assert fid not in [f["id"] for f in listed]
    assert client.get(f"/v1/files/{fid}", headers=tenant).status_code == 200
