"""`POST /v1/files` parses its multipart body as a stream: field order, limits and broken
bodies, and that nothing (no row, no partial blob) is left by a refused upload."""

import gzip
import hashlib
import json
import os

from sqlalchemy import func, select

from app.config import get_settings
from app.db import session_scope
from app.models import File

ROW = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
LINE = (json.dumps(ROW) + "\n").encode()
BOUNDARY = "loraplex-test-boundary"


def form(*parts: tuple[str, bytes, str | None], boundary: str = BOUNDARY) -> bytes:
    """A multipart body with the parts in the given order: (name, value, filename)."""
    out = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def post_form(client, headers, body: bytes, boundary: str = BOUNDARY):
    return client.post(
        "/v1/files",
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body,
    )


def file_count() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(File)) or 0)


def partials() -> list:
    return list(get_settings().storage_dir.rglob(".partial-*"))


def test_multi_megabyte_upload_keeps_its_sha256(client, tenant):
    body = os.urandom(3 * 1024 * 1024 + 17) + LINE  # crosses several 1 MiB write slices
    r = post_form(client, tenant, form(("purpose", b"fine-tune", None), ("file", body, "big.bin")))
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["bytes"] == len(body) and f["sha256"] == hashlib.sha256(body).hexdigest()
    stored = get_settings().storage_dir / "files"
    assert hashlib.sha256(next(stored.rglob(f["id"])).read_bytes()).hexdigest() == f["sha256"]


def test_purpose_after_the_file_part(client, tenant):
    r = post_form(client, tenant, form(("file", LINE, "a.jsonl"), ("purpose", b"fine-tune", None)))
    assert r.status_code == 200, r.text
    assert r.json()["purpose"] == "fine-tune" and r.json()["filename"] == "a.jsonl"


def test_purpose_before_the_file_part(client, tenant):
    r = post_form(client, tenant, form(("purpose", b"fine-tune", None), ("file", LINE, "b.jsonl")))
    assert r.status_code == 200, r.text
    assert r.json()["bytes"] == len(LINE)


def test_bad_purpose_after_the_file_stores_nothing(client, tenant):
    before = file_count()
    r = post_form(client, tenant, form(("file", LINE, "a.jsonl"), ("purpose", b"batch", None)))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_purpose"
    assert file_count() == before and partials() == []


def test_missing_purpose_is_400(client, tenant):
    r = post_form(client, tenant, form(("file", LINE, "a.jsonl")))
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"


def test_missing_file_is_400(client, tenant):
    r = post_form(client, tenant, form(("purpose", b"fine-tune", None)))
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"


def test_two_file_parts_are_refused(client, tenant):
    body = form(("purpose", b"fine-tune", None), ("file", LINE, "a.jsonl"), ("file", LINE, "b"))
    r = post_form(client, tenant, body)
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    assert partials() == []


def test_truncated_body_leaves_no_row_and_no_partial(client, tenant):
    before = file_count()
    full = form(("purpose", b"fine-tune", None), ("file", LINE * 5000, "t.jsonl"))
    r = post_form(client, tenant, full[: len(full) // 2])
    assert r.status_code == 400 and r.json()["error"]["code"] == "incomplete_body"
    assert file_count() == before and partials() == []


def test_garbage_body_is_400(client, tenant):
    r = post_form(client, tenant, b"this is not multipart at all" * 100)
    assert r.status_code == 400
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert partials() == []


def test_non_multipart_content_type_is_400(client, tenant):
    r = client.post("/v1/files", headers={**tenant, "Content-Type": "application/json"}, json={})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_content_type"


def test_oversize_is_413_when_crossed_mid_stream(client, tenant, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 10_000)
    before = file_count()
    body = form(("purpose", b"fine-tune", None), ("file", b"x" * 10_001, "big.jsonl"))
    r = post_form(client, tenant, body)
    assert r.status_code == 413
    assert r.json()["error"] == {
        "message": "File is larger than the 10000-byte limit.",
        "type": "invalid_request_error",
        "param": "file",
        "code": "file_too_large",
    }
    assert file_count() == before and partials() == []


def test_exactly_the_limit_is_accepted(client, tenant, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 10_000)
    body = form(("purpose", b"fine-tune", None), ("file", b"x" * 10_000, "edge.jsonl"))
    assert post_form(client, tenant, body).status_code == 200


def test_declared_length_over_the_limit_is_refused_before_reading(client, tenant, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_upload_bytes", 100)
    body = form(("purpose", b"fine-tune", None), ("file", b"x" * (2 * 1024 * 1024), "h.jsonl"))
    r = post_form(client, tenant, body)
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    assert partials() == []


def test_gzipped_jsonl_is_accepted_and_returned_as_uploaded(client, tenant):
    packed = gzip.compress(LINE * 50)
    body = form(("purpose", b"fine-tune", None), ("file", packed, "train.jsonl.gz"))
    r = post_form(client, tenant, body)
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["filename"] == "train.jsonl.gz" and f["sha256"] == hashlib.sha256(packed).hexdigest()
    assert client.get(f"/v1/files/{f['id']}/content", headers=tenant).content == packed
