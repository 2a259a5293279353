"""The Uploads API: create, add parts, complete (order, size, md5), cancel, expiry (lazy and
by the sweep), a racing double complete, and tenant isolation."""

import hashlib
import json
import os
import threading
import time

from sqlalchemy import func, select, update

from app.config import get_settings
from app.db import session_scope
from app.models import File, Upload, UploadPart
from app.uploads import service as uploads_service
from app.uploads.service import expire_stale_uploads

ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
LINE = (json.dumps(ROW) + "\n").encode()


def create(client, headers, size: int, filename="big.jsonl", purpose="fine-tune"):
    return client.post(
        "/v1/uploads",
        headers=headers,
        json={"filename": filename, "purpose": purpose, "bytes": size, "mime_type": "text/jsonl"},
    )


def add_part(client, headers, upload_id: str, data: bytes):
    return client.post(
        f"/v1/uploads/{upload_id}/parts", headers=headers, files={"data": ("blob", data)}
    )


def complete(client, headers, upload_id: str, part_ids: list[str], md5: str | None = None):
    body: dict = {"part_ids": part_ids}
    if md5 is not None:
        body["md5"] = md5
    return client.post(f"/v1/uploads/{upload_id}/complete", headers=headers, json=body)


def staged(
    client, headers, chunks: list[bytes], filename: str = "big.jsonl"
) -> tuple[str, list[str]]:
    """An upload with one part per chunk (in that order); returns (upload id, part ids)."""
    upload = create(client, headers, sum(len(c) for c in chunks), filename=filename).json()
    part_ids = []
    for chunk in chunks:
        r = add_part(client, headers, upload["id"], chunk)
        assert r.status_code == 200, r.text
        part_ids.append(r.json()["id"])
    return upload["id"], part_ids


def parts_dir(upload_id: str):
    return next(iter(get_settings().storage_dir.glob(f"uploads/*/{upload_id}")), None)


def part_rows(upload_id: str) -> int:
    with session_scope() as session:
        stmt = select(func.count()).select_from(UploadPart).where(UploadPart.upload_id == upload_id)
        return int(session.scalar(stmt) or 0)


def files_named(filename: str) -> int:
    with session_scope() as session:
        stmt = select(func.count()).select_from(File).where(File.filename == filename)
        return int(session.scalar(stmt) or 0)


def expire_in_db(upload_id: str) -> None:
    with session_scope() as session:
        session.execute(update(Upload).where(Upload.id == upload_id).values(expires_at=1))


def test_create_returns_openai_upload_object(client, tenant):
    r = create(client, tenant, 1234)
    assert r.status_code == 200, r.text
    u = r.json()
    assert set(u) == {
        "id",
        "object",
        "bytes",
        "created_at",
        "expires_at",
        "filename",
        "purpose",
        "status",
        "file",
    }
    assert u["object"] == "upload" and u["status"] == "pending" and u["file"] is None
    assert u["bytes"] == 1234 and u["expires_at"] == u["created_at"] + 3600


def test_create_refuses_bad_purpose_and_oversize(client, tenant):
    assert create(client, tenant, 10, purpose="batch").json()["error"]["param"] == "purpose"
    too_big = create(client, tenant, get_settings().max_upload_bytes + 1)
    assert too_big.status_code == 413 and too_big.json()["error"]["param"] == "bytes"
    assert create(client, tenant, 0).status_code == 400


def test_happy_path_with_md5_creates_the_file_and_drops_the_parts(client, tenant):
    chunks = [LINE * 3000, LINE * 2000, LINE * 7]
    whole = b"".join(chunks)
    upload_id, part_ids = staged(client, tenant, chunks)
    part = add_part(client, tenant, upload_id, b"")  # empty parts are refused
    assert part.status_code == 400 and part.json()["error"]["code"] == "empty_part"
    assert parts_dir(upload_id) is not None and part_rows(upload_id) == 3

    r = complete(client, tenant, upload_id, part_ids, hashlib.md5(whole).hexdigest())
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["status"] == "completed" and u["file"]["object"] == "file"
    f = u["file"]
    assert f["bytes"] == len(whole) and f["sha256"] == hashlib.sha256(whole).hexdigest()
    assert f["filename"] == "big.jsonl" and f["purpose"] == "fine-tune"
    assert client.get(f"/v1/files/{f['id']}/content", headers=tenant).content == whole
    assert part_rows(upload_id) == 0 and parts_dir(upload_id) is None


def test_part_object_shape(client, tenant):
    upload = create(client, tenant, 10).json()
    p = add_part(client, tenant, upload["id"], b"0123456789").json()
    assert set(p) == {"id", "object", "created_at", "upload_id"}
    assert p["object"] == "upload.part" and p["upload_id"] == upload["id"]


def test_parts_are_assembled_in_the_order_given(client, tenant):
    upload_id, (a, b, c) = staged(client, tenant, [b"AAAA", b"BB", b"CCCCCC"])
    r = complete(client, tenant, upload_id, [c, a, b])
    assert r.status_code == 200, r.text
    content = client.get(f"/v1/files/{r.json()['file']['id']}/content", headers=tenant).content
    assert content == b"CCCCCCAAAABB"


def test_wrong_md5_is_400_and_the_upload_stays_pending(client, tenant):
    upload_id, part_ids = staged(client, tenant, [b"hello ", b"world"])
    r = complete(client, tenant, upload_id, part_ids, "0" * 32)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "md5_mismatch" and err["param"] == "md5"
    assert hashlib.md5(b"hello world").hexdigest() in err["message"]
    assert part_rows(upload_id) == 2 and not list(get_settings().storage_dir.rglob(".partial-*"))
    retry = complete(client, tenant, upload_id, part_ids, hashlib.md5(b"hello world").hexdigest())
    assert retry.status_code == 200 and retry.json()["status"] == "completed"


def test_malformed_md5_is_400(client, tenant):
    upload_id, part_ids = staged(client, tenant, [b"abc"])
    r = complete(client, tenant, upload_id, part_ids, "not-an-md5")
    assert r.status_code == 400 and r.json()["error"]["param"] == "md5"


def test_parts_not_adding_up_to_the_declared_bytes_is_400(client, tenant):
    upload = create(client, tenant, 100).json()
    part = add_part(client, tenant, upload["id"], b"x" * 60).json()
    r = complete(client, tenant, upload["id"], [part["id"]])
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "upload_bytes_mismatch" and "60" in err["message"]
    assert "100" in err["message"]
    more = add_part(client, tenant, upload["id"], b"y" * 40).json()
    assert complete(client, tenant, upload["id"], [part["id"], more["id"]]).status_code == 200


def test_unknown_duplicate_or_foreign_part_ids_are_400(client, tenant):
    upload_id, part_ids = staged(client, tenant, [b"abc"])
    _, other_parts = staged(client, tenant, [b"abc"])
    for ids in (["part-nope"], part_ids + part_ids, other_parts, []):
        r = complete(client, tenant, upload_id, ids)
        assert r.status_code == 400, ids
        assert r.json()["error"]["param"] == "part_ids"


def test_part_over_the_part_limit_is_413(client, tenant, monkeypatch):
    monkeypatch.setattr(uploads_service, "MAX_PART_BYTES", 1000)
    upload = create(client, tenant, 5000).json()
    r = add_part(client, tenant, upload["id"], b"x" * 1001)
    assert r.status_code == 413 and r.json()["error"]["code"] == "part_too_large"
    assert part_rows(upload["id"]) == 0
    assert not list(get_settings().storage_dir.rglob(".partial-*"))
    assert add_part(client, tenant, upload["id"], b"x" * 1000).status_code == 200


def test_cancel_deletes_the_parts_and_ends_the_upload(client, tenant):
    upload_id, part_ids = staged(client, tenant, [b"abc", b"def"])
    r = client.post(f"/v1/uploads/{upload_id}/cancel", headers=tenant)
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["file"] is None
    assert part_rows(upload_id) == 0 and parts_dir(upload_id) is None
    for attempt in (
        add_part(client, tenant, upload_id, b"x"),
        complete(client, tenant, upload_id, part_ids),
        client.post(f"/v1/uploads/{upload_id}/cancel", headers=tenant),
    ):
        assert attempt.status_code == 400
        assert attempt.json()["error"]["code"] == "upload_not_pending"


def test_touching_an_expired_upload_is_400_and_cleans_it(client, tenant):
    for touch in ("part", "complete", "cancel"):
        upload_id, part_ids = staged(client, tenant, [b"abc"])
        expire_in_db(upload_id)
        if touch == "part":
            r = add_part(client, tenant, upload_id, b"d")
        elif touch == "complete":
            r = complete(client, tenant, upload_id, part_ids)
        else:
            r = client.post(f"/v1/uploads/{upload_id}/cancel", headers=tenant)
        assert r.status_code == 400, touch
        assert r.json()["error"]["code"] == "upload_expired"
        with session_scope() as session:
            assert session.get(Upload, upload_id).status == "expired"  # type: ignore[union-attr]
        assert part_rows(upload_id) == 0 and parts_dir(upload_id) is None
        assert not list(get_settings().storage_dir.rglob(".partial-*"))


def test_the_sweep_expires_stale_uploads_only(client, tenant):
    stale_id, _ = staged(client, tenant, [b"abc"])
    fresh_id, _ = staged(client, tenant, [b"abc"])
    expire_in_db(stale_id)
    with session_scope() as session:
        assert expire_stale_uploads(session) >= 1
    with session_scope() as session:
        assert session.get(Upload, stale_id).status == "expired"  # type: ignore[union-attr]
        assert session.get(Upload, fresh_id).status == "pending"  # type: ignore[union-attr]
        assert expire_stale_uploads(session) == 0
    assert part_rows(stale_id) == 0 and parts_dir(stale_id) is None
    assert part_rows(fresh_id) == 1 and parts_dir(fresh_id) is not None


def test_cli_uploads_expire(client, tenant):
    from typer.testing import CliRunner

    from app.cli import cli

    upload_id, _ = staged(client, tenant, [b"abc"])
    expire_in_db(upload_id)
    result = CliRunner().invoke(cli, ["uploads", "expire"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["expired"] >= 1
    assert parts_dir(upload_id) is None


def test_completing_twice_makes_one_file(client, tenant):
    name = f"twice-{os.getpid()}-{time.time_ns()}.jsonl"
    upload_id, part_ids = staged(client, tenant, [b"abc", b"def"], filename=name)
    first = complete(client, tenant, upload_id, part_ids)
    assert first.status_code == 200
    again = complete(client, tenant, upload_id, part_ids)
    assert again.status_code == 400 and again.json()["error"]["code"] == "upload_not_pending"
    assert files_named(name) == 1


def test_racing_completes_make_one_file(client, tenant):
    name = f"race-{os.getpid()}-{time.time_ns()}.jsonl"
    chunk = LINE * 60_000  # ~4.7 MB a part: the assembly takes a moment
    upload = create(client, tenant, 4 * len(chunk), filename=name).json()
    part_ids = [add_part(client, tenant, upload["id"], chunk).json()["id"] for _ in range(4)]
    barrier, results = threading.Barrier(4), []

    def racer() -> None:
        barrier.wait()
        results.append(complete(client, tenant, upload["id"], part_ids))

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 1, [r.text for r in results]
    assert all(r.status_code in (400, 409) for r in results if r.status_code != 200)
    assert files_named(name) == 1
    assert not list(get_settings().storage_dir.rglob(".partial-*"))


def test_other_tenant_gets_404_for_every_upload_route(client, tenant, other_tenant):
    upload_id, part_ids = staged(client, tenant, [b"abc"])
    for path, kwargs in [
        (f"/v1/uploads/{upload_id}/parts", {"files": {"data": ("blob", b"x")}}),
        (f"/v1/uploads/{upload_id}/complete", {"json": {"part_ids": part_ids}}),
        (f"/v1/uploads/{upload_id}/cancel", {}),
    ]:
        r = client.post(path, headers=other_tenant, **kwargs)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "upload_not_found"
    # The owner's upload is untouched and still completes.
    assert part_rows(upload_id) == 1
    assert complete(client, tenant, upload_id, part_ids).status_code == 200


def test_unknown_upload_id_is_404(client, tenant):
    r = client.post("/v1/uploads/upload-nope/cancel", headers=tenant)
    assert r.status_code == 404 and r.json()["error"]["code"] == "upload_not_found"
