"""Hostile input against the real processes: the API (`uvicorn` as `loraplex up` runs it,
logging at DEBUG) and a cpu-queue Celery worker (logging at DEBUG) on the test database and
broker. Compression bombs, archives and nesting bombs as datasets; oversized headers and
bodies; uploads that trickle and stall. Last, every log line the processes wrote is searched
for the API keys and the server's secret key."""

import json
import os
import secrets
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import func
from sqlalchemy import select as sql_select

from app.config import Settings, get_settings
from app.db import session_scope
from app.models import File, UploadPart
from app.stack import Stack, api_command, worker_command
from tests.hostile import GOOD_LINE, gzip_bomb, nested, zip_of

SECRET_KEY = "pepper-" + secrets.token_urlsafe(24)
DECOMPRESSED_LIMIT = 16 * 1024 * 1024
IDLE_TIMEOUT = 2.0
MIN_UPLOAD_RATE = 1024  # bytes a second, once an upload has run IDLE_TIMEOUT seconds
JSON_BODY_TIMEOUT = 2.0
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["out"], "level": "DEBUG"},
    "loggers": {
        "uvicorn": {"level": "DEBUG"},
        "uvicorn.access": {"level": "DEBUG"},
        "sqlalchemy.engine": {"level": "INFO"},  # every statement, with its parameters
    },
}
# Every key and error body seen, to be searched for in the logs at the end.
SEEN_KEYS: list[str] = []
ERROR_BODIES: list[str] = []


@pytest.fixture(scope="module")
def live(own_workers, tmp_path_factory) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    settings = get_settings()
    pepper = settings.secret_key
    settings.secret_key = SECRET_KEY  # keys made here must match the API's
    log_config = tmp_path_factory.mktemp("logs") / "log-config.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    env = {
        **os.environ,
        "LORAPLEX_SECRET_KEY": SECRET_KEY,
        "LORAPLEX_MAX_DECOMPRESSED_BYTES": str(DECOMPRESSED_LIMIT),
        "LORAPLEX_UPLOAD_IDLE_TIMEOUT": str(IDLE_TIMEOUT),
        "LORAPLEX_UPLOAD_MIN_BYTES_PER_SECOND": str(MIN_UPLOAD_RATE),
        "LORAPLEX_JSON_BODY_TIMEOUT": str(JSON_BODY_TIMEOUT),
    }
    stack = Stack(Settings(), env=env)
    worker = [a if a != "INFO" else "DEBUG" for a in worker_command("cpu")]
    offsets = {name: _size(stack.log_dir / f"{name}.log") for name in ("api", "worker-cpu")}
    try:
        stack.start("worker-cpu", worker)
        stack.start("api", [*api_command(stack.settings), "--log-config", str(log_config)])
        stack.wait_ready()
        stack.log_offsets = offsets  # type: ignore[attr-defined]
        yield stack
    finally:
        stack.stop()
        settings.secret_key = pepper


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@pytest.fixture(scope="module")
def api_key(live, make_tenant_module) -> str:  # type: ignore[no-untyped-def]
    return str(make_tenant_module())


@pytest.fixture(scope="module")
def make_tenant_module():  # type: ignore[no-untyped-def]
    from app.tenants.service import create_tenant

    def _make() -> str:
        with session_scope() as session:
            _, key = create_tenant(session, f"hostile-{secrets.token_hex(4)}")
        SEEN_KEYS.append(key)
        return key

    return _make


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def remember_error(response: httpx.Response) -> dict[str, Any]:
    ERROR_BODIES.append(response.text)
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return dict(error)


def upload(live: Stack, key: str, name: str, data: bytes) -> str:
    r = httpx.post(
        f"{live.api_url}/v1/files",
        headers=auth(key),
        files={"file": (name, data)},
        data={"purpose": "fine-tune"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def settled(live: Stack, key: str, file_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{live.api_url}/v1/files/{file_id}/report", headers=auth(key))
        body = r.json()
        if body["status"] in ("processed", "error"):
            return dict(body)
        time.sleep(0.25)
    raise AssertionError(f"{file_id} was not validated within {timeout:.0f}s")


def pool_children(live: Stack) -> list[psutil.Process]:
    return psutil.Process(live.processes["worker-cpu"].pid).children(recursive=True)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


# ------------------------------------------------------------------------- datasets


def test_bombs_and_archives_are_file_errors_and_the_worker_survives(live, api_key, tmp_path):
    warm = settled(live, api_key, upload(live, api_key, "warm.jsonl", GOOD_LINE * 50))
    assert warm["status"] == "processed"
    children = pool_children(live)
    assert children, "the worker has no pool process"
    before = {c.pid: peak_rss_mib(c.pid) for c in children}

    bomb = tmp_path / "bomb.jsonl.gz"
    gzip_bomb(bomb, 8)  # ~8 MB on disk, 8 GiB of zeros
    bomb_id = upload(live, api_key, "bomb.jsonl.gz", bomb.read_bytes())
    zip_id = upload(live, api_key, "train.jsonl", zip_of("train.jsonl", GOOD_LINE * 100))
    zip_bomb_id = upload(live, api_key, "z.jsonl", zip_of("z.jsonl", bytes(512 * 1024 * 1024)))
    deep = GOOD_LINE + nested(100_000).encode() + b"\n" + GOOD_LINE
    deep_id = upload(live, api_key, "deep.jsonl", deep)

    report = settled(live, api_key, bomb_id)
    assert report["status"] == "error"
    assert report["report"]["errors_by_code"]["decompressed_too_large"] == 1
    assert report["report"]["compression"] == "gzip"
    for file_id in (zip_id, zip_bomb_id):
        report = settled(live, api_key, file_id)
        assert report["status"] == "error"
        assert report["report"]["errors_by_code"] == {"unsupported_archive": 1}
    report = settled(live, api_key, deep_id)
    assert report["status"] == "error"
    assert report["report"]["errors_by_code"] == {"too_deeply_nested": 1}
    assert report["report"]["valid_rows"] == 2
    r = httpx.get(f"{live.api_url}/v1/files/{deep_id}", headers=auth(api_key))
    assert "too_deeply_nested" in r.json()["status_details"]

    # The same pool processes did all of it, within bounded memory.
    assert live.processes["worker-cpu"].poll() is None
    after = {c.pid: peak_rss_mib(c.pid) for c in pool_children(live)}
    assert set(after) == set(before), "a pool process died and was replaced"
    grown = max(after[pid] - before[pid] for pid in after)
    assert grown < 64, f"the worker's peak memory grew {grown:.0f} MiB"

    # A bomb of valid rows: the rows up to the limit are read and checked, no more.
    rows_bomb = tmp_path / "rows.jsonl"
    gzip_bomb(rows_bomb, 1, line=GOOD_LINE)  # 1 GiB of rows, named like plain JSONL
    report = settled(live, api_key, upload(live, api_key, "rows.jsonl", rows_bomb.read_bytes()))
    assert report["status"] == "error"
    assert report["report"]["errors_by_code"] == {"decompressed_too_large": 1}
    assert 0 < report["report"]["valid_rows"] <= DECOMPRESSED_LIMIT // len(GOOD_LINE)
    again = settled(live, api_key, upload(live, api_key, "after.jsonl", GOOD_LINE * 3))
    assert again["status"] == "processed"
    assert {c.pid for c in pool_children(live)} == set(before)


# ------------------------------------------------------------------------- bodies, headers


@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize(
    "path",
    ["/v1/chat/completions", "/v1/completions", "/v1/api_keys", "/v1/fine_tuning/jobs"],
)
def test_a_json_nesting_bomb_is_a_400(live, api_key, path, kind):
    r = httpx.post(
        f"{live.api_url}{path}",
        headers={**auth(api_key), "Content-Type": "application/json"},
        content=nested(100_000, kind),
    )
    assert r.status_code == 400, r.text
    assert remember_error(r)["code"] == "json_too_deep"


def test_a_chat_request_nested_past_the_gateway_limit_is_a_400(live, api_key):
    # Parses (under Python's recursion limit), but is refused before it is passed on.
    body = (
        '{"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": '
        + nested(500)
        + "}]}"
    )
    r = httpx.post(
        f"{live.api_url}/v1/chat/completions",
        headers={**auth(api_key), "Content-Type": "application/json"},
        content=body,
    )
    assert r.status_code == 400, r.text
    assert remember_error(r)["code"] == "json_too_deep"


def raw_request(live: Stack) -> socket.socket:
    return socket.create_connection((live.settings.api_host, live.settings.api_port), timeout=30)


def read_response(sock: socket.socket, data: bytes = b"") -> tuple[int, bytes]:
    """The status and body of the response on `sock`, `data` being what was read already."""
    while True:
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and b"content-length:" in head.lower():
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(body) >= length:
                break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def send_until_answered(sock: socket.socket, chunks: Iterator[bytes]) -> int:
    """Send chunks until the server answers (or stops reading); returns the bytes sent."""
    sent = 0
    for chunk in chunks:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    return sent


def test_an_oversized_json_body_is_a_413_before_it_is_read(live, api_key):
    api_pid = live.processes["api"].pid
    peak_before = peak_rss_mib(api_pid)
    limit = get_settings().max_json_body_bytes
    megabyte = b"x" * (1024 * 1024)
    total = 50 * 1024 * 1024

    # Content-Length says 50 MB: answered at once, with one megabyte sent.
    with raw_request(live) as sock:
        sock.sendall(
            (
                "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n"
                f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {total}\r\n\r\n"
            ).encode()
            + b'{"model": "m", "messages": [{"role": "user", "content": "'
            + megabyte
        )
        status, body = read_response(sock)
    assert status == 413
    error = json.loads(body)["error"]
    assert error["code"] == "request_too_large" and str(limit) in error["message"]
    ERROR_BODIES.append(body.decode())

    # Chunked, no length: refused once past the limit, long before 50 MB.
    with raw_request(live) as sock:
        sock.sendall(
            (
                "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n"
                f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        piece = b"%x\r\n%s\r\n" % (len(megabyte), megabyte)
        sent = send_until_answered(sock, iter([piece] * 50))
        status, body = read_response(sock)
    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"
    assert limit < sent < total
    grown = peak_rss_mib(api_pid) - peak_before
    assert grown < 48, f"the API's peak memory grew {grown:.0f} MiB"
    assert httpx.get(f"{live.api_url}/healthz").status_code == 200


def test_file_uploads_keep_their_own_larger_limit(live, api_key):
    size = get_settings().max_json_body_bytes + 1024 * 1024
    data = GOOD_LINE * (size // len(GOOD_LINE))
    file_id = upload(live, api_key, "big.jsonl", data)
    r = httpx.get(f"{live.api_url}/v1/files/{file_id}", headers=auth(api_key))
    assert r.json()["bytes"] == len(data)


@pytest.mark.parametrize(
    "header",
    [
        "Authorization: Bearer lpx-" + "k" * 100 * 1024,
        "X-Padding: " + "p" * 100 * 1024,
        "Cookie: " + "; ".join(f"c{i}=v" for i in range(20_000)),
        "X-Huge: " + "h" * 64 * 1024 * 1024,
    ],
    ids=["100KB-authorization", "100KB-header", "many-cookies", "64MB-header"],
)
def test_oversized_headers_are_a_431_and_the_server_carries_on(live, api_key, header):
    api_pid = live.processes["api"].pid
    peak_before = peak_rss_mib(api_pid)
    with raw_request(live) as sock:
        head = f"GET /v1/models HTTP/1.1\r\nHost: t\r\n{header}\r\n\r\n".encode()
        send_until_answered(sock, (head[i : i + 65536] for i in range(0, len(head), 65536)))
        status, body = read_response(sock)
    assert status == 431
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "headers_too_large"
    grown = peak_rss_mib(api_pid) - peak_before
    assert grown < 16, f"the API's peak memory grew {grown:.0f} MiB"
    r = httpx.get(f"{live.api_url}/v1/models", headers=auth(api_key))
    assert r.status_code == 200


def test_headers_under_the_limit_are_served(live, api_key):
    r = httpx.get(
        f"{live.api_url}/v1/models",
        headers={**auth(api_key), "X-Padding": "p" * 32 * 1024},
    )
    assert r.status_code == 200


# ------------------------------------------------------------------------- slow uploads


def partials() -> list[Path]:
    return list(get_settings().storage_dir.rglob(".partial-*"))


def count(model: type) -> int:
    with session_scope() as session:
        return int(session.scalar(sql_select(func.count()).select_from(model)) or 0)


def start_upload(live: Stack, key: str, path: str, field: str) -> socket.socket:
    boundary = "slow"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="s.jsonl"'
        "\r\n\r\n"
    ).encode()
    sock = raw_request(live)
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(head) + 10 * 1024 * 1024}\r\n\r\n"
        ).encode()
        + head
        + GOOD_LINE * 20_000  # ~1.4 MB: past the parser's first flush, so a blob is open
    )
    return sock


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_trickled_then_stalled_uploads_are_dropped_and_others_are_served(live, api_key):
    files_before, parts_before = count(File), count(UploadPart)
    created = httpx.post(
        f"{live.api_url}/v1/uploads",
        headers=auth(api_key),
        json={"filename": "p.jsonl", "purpose": "fine-tune", "bytes": 10**7, "mime_type": "x"},
    )
    upload_id = created.json()["id"]
    slow = [start_upload(live, api_key, "/v1/files", "file") for _ in range(4)]
    slow.append(start_upload(live, api_key, f"/v1/uploads/{upload_id}/parts", "data"))
    try:
        deadline = time.monotonic() + 10
        while len(partials()) < len(slow) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(partials()) >= len(slow), "the server should be writing every upload"
        # Trickle: a line every half the idle timeout keeps them alive, while other
        # requests are answered.
        for _ in range(4):
            for sock in slow:
                sock.sendall(GOOD_LINE)
            r = httpx.get(f"{live.api_url}/v1/files", headers=auth(api_key), timeout=10)
            assert r.status_code == 200
            time.sleep(IDLE_TIMEOUT / 2)
        assert len(partials()) >= len(slow), "a trickling upload was dropped too early"
        # Stall: each is answered 408 once the idle timeout passes, and closed.
        for sock in slow:
            status, body = read_response(sock)
            assert status == 408
            error = json.loads(body)["error"]
            assert error["code"] == "upload_timeout"
            ERROR_BODIES.append(body.decode())
            assert closed(sock), "the server should close a dropped upload's connection"
    finally:
        for sock in slow:
            sock.close()
    deadline = time.monotonic() + 10
    while partials() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert partials() == []
    assert (count(File), count(UploadPart)) == (files_before, parts_before)
    assert httpx.get(f"{live.api_url}/healthz").status_code == 200


def test_an_upload_trickled_under_the_minimum_rate_is_dropped(live, api_key):
    """A byte every quarter of the idle timeout never trips it; the average rate does."""
    files_before = count(File)
    boundary = "trickle"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="t.jsonl"'
        "\r\n\r\n"
    ).encode()
    sock = raw_request(live)
    try:
        sock.sendall(
            (
                f"POST /v1/files HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {api_key}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(head) + 10**6}\r\n\r\n"
            ).encode()
            + head
        )
        sock.settimeout(IDLE_TIMEOUT / 4)
        answer = b""
        for _ in range(40):  # ~10 s at most; the server gives up after ~2
            try:
                sock.sendall(b"x")
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if answer:
                break
        sock.settimeout(30)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        _, body = read_response(sock, answer)  # the body may come in a later segment
        error = json.loads(body)["error"]
        assert error["code"] == "upload_too_slow" and "bytes a second" in error["message"]
        ERROR_BODIES.append(body.decode())
    finally:
        sock.close()
    deadline = time.monotonic() + 10
    while partials() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert partials() == [] and count(File) == files_before


def test_a_json_body_that_arrives_too_slowly_is_a_408(live, api_key):
    body = json.dumps({"model": "SmolLM2-135M-Instruct", "messages": []}).encode()
    sock = raw_request(live)
    try:
        sock.sendall(
            (
                f"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n"
                f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body[:5]
        )
        sock.settimeout(JSON_BODY_TIMEOUT / 4)
        answer = b""
        for byte in body[5:-1]:  # never the last byte: only the deadline can end this
            try:
                sock.sendall(bytes([byte]))
                answer = sock.recv(65536)
            except TimeoutError:
                # meanwhile the server answers everyone else
                assert httpx.get(f"{live.api_url}/healthz", timeout=10).status_code == 200
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if answer:
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        sock.settimeout(10)
        _, payload = read_response(sock, answer)  # the body may come in a later segment
        error = json.loads(payload)["error"]
        assert error["code"] == "request_timeout" and set(error) == {
            "message",
            "type",
            "param",
            "code",
        }
        ERROR_BODIES.append(payload.decode())
        sock.settimeout(10)
        assert closed(sock), "the server should close a connection whose body timed out"
    finally:
        sock.close()


def test_a_stream_outlives_the_json_body_deadline(live, api_key):
    """The deadline covers the body only: a streaming response waits on the same `receive`
    for the client's disconnect, and must not be cut off. A job's event stream stays open
    while the job waits (no training worker here), past the deadline, until it is cancelled."""
    file_id = upload(live, api_key, "stream.jsonl", GOOD_LINE * 10)
    assert settled(live, api_key, file_id)["status"] == "processed"
    created = httpx.post(
        f"{live.api_url}/v1/fine_tuning/jobs",
        headers=auth(api_key),
        json={"model": "SmolLM2-135M-Instruct", "training_file": file_id},
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    url = f"{live.api_url}/v1/fine_tuning/jobs/{job_id}/events?stream=true"
    with httpx.stream("GET", url, headers=auth(api_key), timeout=30) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        assert next(line for line in lines if line.startswith("event: job"))
        time.sleep(JSON_BODY_TIMEOUT * 2)
        cancel = httpx.post(
            f"{live.api_url}/v1/fine_tuning/jobs/{job_id}/cancel", headers=auth(api_key)
        )
        assert cancel.status_code == 200, cancel.text
        statuses = [
            json.loads(line[6:]).get("status")
            for line in lines
            if line.startswith("data: {") and '"object":"fine_tuning.job"' in line.replace(" ", "")
        ]
    assert statuses and statuses[-1] == "cancelled"


# ------------------------------------------------------------------------- secrets in logs


def test_no_secret_is_ever_logged_or_answered(live, api_key, make_tenant_module):
    base = live.api_url
    other = make_tenant_module()
    # A second key made through the API (shown once), used, revoked, used again.
    made = httpx.post(f"{base}/v1/api_keys", headers=auth(api_key), json={"name": "second"})
    assert made.status_code == 200, made.text
    second = made.json()["key"]
    SEEN_KEYS.append(second)
    assert httpx.get(f"{base}/v1/me", headers=auth(second)).status_code == 200
    assert httpx.delete(f"{base}/v1/api_keys/{made.json()['id']}", headers=auth(api_key)).is_success
    refused = httpx.get(f"{base}/v1/me", headers=auth(second))
    assert refused.status_code == 401
    remember_error(refused)
    # Errors of every kind (and a key misplaced in a query string), a key sent each time.
    wrong = "lpx-" + secrets.token_urlsafe(32)
    SEEN_KEYS.append(wrong)
    requests = [
        ("GET", "/v1/me", auth(wrong), None),
        ("GET", "/v1/files/file-nope", auth(other), None),
        ("POST", "/v1/fine_tuning/jobs", auth(api_key), {"model": "x"}),
        ("POST", "/v1/chat/completions", auth(api_key), {"model": "nope", "messages": []}),
        ("POST", "/v1/chat/completions", auth(other), {"model": "SmolLM2-135M-Instruct",
                                                       "messages": [{"role": "user",
                                                                     "content": "hi"}]}),
        ("GET", f"/v1/models?api_key={api_key}", {}, None),  # a key in the query string
        ("GET", f"/v1/files?key={other}&limit=1", auth(other), None),
        ("GET", "/v1/nope", {"Authorization": f"Basic {api_key}"}, None),
    ]  # fmt: skip
    for method, path, headers, body in requests:
        r = httpx.request(method, f"{base}{path}", headers=headers, json=body)
        if r.status_code >= 400:
            remember_error(r)
        else:
            ERROR_BODIES.append(r.text)
    time.sleep(1.5)  # the worker's and the API's last lines reach their files

    lines = []
    for name, offset in live.log_offsets.items():
        with (live.log_dir / f"{name}.log").open("rb") as log:
            log.seek(offset)
            lines += log.read().decode("utf-8", "replace").splitlines()
    assert any("GET /v1/models?api_key=" in line for line in lines), "no access log captured"
    assert any(" DEBUG " in line for line in lines), "no DEBUG lines captured"
    assert any("sqlalchemy.engine" in line for line in lines), "no SQL lines captured"
    secrets_seen = [*SEEN_KEYS, SECRET_KEY]
    leaks = [
        (secret[:12], line[:200])
        for line in lines
        for secret in secrets_seen
        if secret in line or secret[10:] in line
    ]
    assert leaks == [], f"{len(leaks)} log lines carry a secret: {leaks[:5]}"
    answered = [body for body in ERROR_BODIES if any(s[10:] in body for s in secrets_seen)]
    assert answered == []
