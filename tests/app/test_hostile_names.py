"""Path traversal and odd names: file names (multipart and the Uploads API), fine-tuning
suffixes, alias names, model and adapter names in bodies and paths. Each is refused with a
400 in OpenAI's shape, or stored as data only: the blob is always at
`storage/files/<tenant>/<file id>`, nothing is written anywhere the name points to, and the
name shown back is a clean last path component."""

import json
import socket
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from app.config import get_settings
from app.db import session_scope
from app.models import File
from tests.hostile import GOOD_LINE

ESCAPE_DIR = f"/tmp/loraplex-escape-{uuid.uuid4().hex}"

# name sent -> name the file is listed under
NAMES = {
    "../../etc/passwd": "passwd",
    "../../../../../../../../tmp/x.jsonl": "x.jsonl",
    f"{ESCAPE_DIR}/abs.jsonl": "abs.jsonl",
    "..\\..\\windows\\system32\\evil.jsonl": "evil.jsonl",
    "a\x00b.jsonl": "ab.jsonl",
    "new\nline\r.jsonl": "newline.jsonl",
    "evil\u202egpj.exe": "evilgpj.exe",
    "\u200f\u2066rtl\u2069.jsonl": "rtl.jsonl",
    "données.jsonl": "données.jsonl",
    "..": "upload.jsonl",
    "x/..": "upload.jsonl",
    "%2e%2e%2fetc%2fpasswd": "%2e%2e%2fetc%2fpasswd",
    "q\"uote'.jsonl": "q%22uote'.jsonl",  # sent as a browser does: %22
    "y" * 300: "y" * 255,
}


def multipart(filename: str, data: bytes = GOOD_LINE) -> tuple[bytes, str]:
    """A multipart body naming the file `filename` as raw UTF-8 bytes (a client may send
    anything there, line breaks and NUL included, except the quote that ends the value)."""
    head = (
        b'--B\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="'
    )
    raw_name = filename.replace('"', "%22").encode("utf-8", "surrogatepass")
    body = head + raw_name + b'"\r\n\r\n' + data + b"\r\n--B--\r\n"
    return body, "multipart/form-data; boundary=B"


def assert_openai_error(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if code is not None:
        assert error["code"] == code, error
    return error


def all_paths(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def escape_targets(names: list[str], bases: list[Path]) -> dict[Path, int | None]:
    """Every place a name could point to if it were used as a path, with its mtime now
    (None: absent)."""
    targets = set()
    for name in names:
        for variant in {name, name.replace("\\", "/")}:
            if "\x00" not in variant:
                targets |= {(base / variant).resolve() for base in bases}
    return {t: _mtime(t) for t in targets}


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # absent, or a name too long to be a path at all
        return None


def test_odd_file_names_are_stored_as_data_only(client, tenant):
    settings = get_settings()
    data_dir, storage = settings.data_dir, settings.storage_dir
    bases = [storage / "files" / "tenant-x", storage, data_dir, Path("/")]
    # Inside the data dir, the listing of new paths below is the check; outside, these.
    targets = {
        t: m
        for t, m in escape_targets(list(NAMES), bases).items()
        if not t.is_relative_to(data_dir)
    }
    before = all_paths(data_dir)
    created: dict[str, str] = {}
    for sent, listed in NAMES.items():
        body, content_type = multipart(sent)
        r = client.post("/v1/files", headers={**tenant, "Content-Type": content_type}, content=body)
        if sent.startswith("new\n"):
            # A raw CR in a part header is malformed multipart (a browser would encode it).
            assert_openai_error(r, 400, "invalid_multipart")
            continue
        assert r.status_code == 200, (sent, r.text)
        assert r.json()["filename"] == listed, sent
        created[r.json()["id"]] = sent
        content = client.get(f"/v1/files/{r.json()['id']}/content", headers=tenant)
        assert content.status_code == 200 and content.content == GOOD_LINE
        disposition = content.headers["content-disposition"]
        assert disposition.isascii() and "\n" not in disposition and "\r" not in disposition

    with session_scope() as session:
        rows = session.scalars(select(File).where(File.id.in_(created))).all()
        tenant_id = rows[0].tenant_id
        for row in rows:
            assert row.storage_key == f"files/{tenant_id}/{row.id}"
            assert (storage / row.storage_key).read_bytes() == GOOD_LINE
    # The only new paths on disk are the blobs (and their folders); no name was used as one.
    blob_dir = storage / "files" / tenant_id
    new = all_paths(data_dir) - before
    assert {p for p in new if p.is_file()} == {blob_dir / fid for fid in created}
    assert all(p in (storage, storage / "files", blob_dir) for p in new if p.is_dir())
    # Nothing any name points to appeared or changed (/etc/passwd included).
    assert {t: m for t, m in escape_targets(list(NAMES), bases).items() if t in targets} == targets
    assert not Path(ESCAPE_DIR).exists()


def test_multipart_file_name_of_ten_thousand_characters_is_a_clean_400(client, tenant):
    body, content_type = multipart("n" * 10_000)
    r = client.post("/v1/files", headers={**tenant, "Content-Type": content_type}, content=body)
    assert_openai_error(r, 400, "invalid_multipart")


@pytest.mark.parametrize(
    ("sent", "listed"),
    [
        ("../../etc/passwd", "passwd"),
        ("a\x00b.jsonl", "ab.jsonl"),
        ("new\nline.jsonl", "newline.jsonl"),
        ("\u202e", "upload.jsonl"),
        ("C:\\Windows\\..\\x.jsonl", "x.jsonl"),
    ],
)
def test_upload_names_are_cleaned(client, tenant, sent, listed):
    r = client.post(
        "/v1/uploads",
        headers=tenant,
        json={"filename": sent, "purpose": "fine-tune", "bytes": 10, "mime_type": "text/jsonl"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["filename"] == listed


@pytest.mark.parametrize("sent", ["x" * 10_000, "\ud800"])
def test_upload_names_too_long_or_not_text_are_400(client, tenant, sent):
    body = json.dumps(
        {"filename": sent, "purpose": "fine-tune", "bytes": 10, "mime_type": "text/jsonl"}
    )
    r = client.post(
        "/v1/uploads", headers={**tenant, "Content-Type": "application/json"}, content=body
    )
    error = assert_openai_error(r, 400, "invalid_value")
    assert error["param"] == "filename"


ODD = ["../x", "a/b", "..", "%2e%2e", "a\x00", "a\nb", "ab\n", "\u202eab", "ab\t", "a" * 100]


@pytest.mark.parametrize("suffix", ODD)
def test_odd_fine_tuning_suffixes_are_400(client, tenant, suffix):
    r = client.post(
        "/v1/fine_tuning/jobs",
        headers=tenant,
        json={"training_file": "file-x", "model": "SmolLM2-135M-Instruct", "suffix": suffix},
    )
    assert assert_openai_error(r, 400, "invalid_value")["param"] == "suffix"


@pytest.mark.parametrize("name", [*ODD, "a@../b", "a@b/c"])
def test_odd_alias_names_are_400(client, tenant, name):
    r = client.post(
        "/v1/aliases",
        headers=tenant,
        json={"name": name, "target": {"base_model": "SmolLM2-135M-Instruct"}},
    )
    assert assert_openai_error(r, 400, "invalid_value")["param"] == "name"


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("../../etc/passwd", 404, "model_not_found"),
        ("ft:../../x:y", 404, "model_not_found"),
        ("%2e%2e%2f%2e%2e", 404, "model_not_found"),
        ("\u202e", 404, "model_not_found"),
        ("m" * 10_000, 404, "model_not_found"),
        ("a\x00b", 400, "invalid_value"),
        ("\ud800", 400, "invalid_value"),
    ],
)
def test_odd_model_names_in_a_chat_request(client, tenant, model, status, code):
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "x"}]})
    r = client.post(
        "/v1/chat/completions",
        headers={**tenant, "Content-Type": "application/json"},
        content=body,
    )
    assert_openai_error(r, status, code)


def test_a_lone_surrogate_in_a_typed_field_is_400(client, tenant):
    # JSON may spell one ("\ud800"); no UTF-8 text (the database's) can hold it. Typed
    # fields are refused by validation; free-form ones (a chat `model`, above) by the
    # UnicodeEncodeError handler.
    body = '{"name": "key-\\ud800", "scopes": ["all"]}'
    r = client.post(
        "/v1/api_keys", headers={**tenant, "Content-Type": "application/json"}, content=body
    )
    assert assert_openai_error(r, 400, "invalid_value")["param"] == "name"


def raw_get(base_url: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """GET `path` exactly as written (no client-side normalisation of `..`)."""
    host, port = base_url.removeprefix("http://").split(":")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/../../../../etc/passwd",
        "/v1/models/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/v1/models/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/v1/adapters/..%2f..%2fstorage",
        "/v1/files/..%2f..%2f..%2fetc%2fpasswd/content",
        "/v1/aliases/..%2f..%2fetc%2fpasswd",
        "/v1/../../../../etc/passwd",
        "/assets/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/v1/models/" + "a" * 10_000,
    ],
)
def test_traversal_in_url_paths_reaches_no_file(live_api, tenant, path):
    status, body = raw_get(live_api, path, tenant)
    assert b"root:" not in body  # /etc/passwd's first line
    assert status in (400, 404) or (status == 200 and body.lstrip().startswith(b"<!doctype"))
    if status != 200:
        error = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"}
