"""Ingestion against a live server: `uvicorn app.main:app` and a cpu-queue Celery worker run
as subprocesses (the same commands as `loraplex up`) on the test database and broker. The
`loraplex datasets` CLI, the openai SDK, a client that hangs up mid-upload, and the API's
memory while a large body streams through."""

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings, get_settings
from app.db import session_scope
from app.models import File, Upload
from app.stack import Stack, worker_command

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
GOOD_LINE = json.dumps(GOOD) + "\n"


@pytest.fixture(scope="module")
def live() -> Iterator[Stack]:
    stack = Stack(Settings(), env=dict(os.environ))
    try:
        stack.start("worker-cpu", worker_command("cpu"))
        stack.start_api()
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def api_key(make_tenant) -> str:  # type: ignore[no-untyped-def]
    return str(make_tenant("live")[1])


def run_cli(live: Stack, api_key: str, *args: str):  # type: ignore[no-untyped-def]
    env = {"LORAPLEX_BASE_URL": f"{live.api_url}/v1", "LORAPLEX_API_KEY": api_key}
    return CliRunner().invoke(cli, list(args), env=env)


def file_count() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(File)) or 0)


def partials() -> list[Path]:
    return list(get_settings().storage_dir.rglob(".partial-*"))


def test_cli_upload_prints_the_validation_summary(live, api_key, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(GOOD_LINE * 40)
    result = run_cli(live, api_key, "datasets", "upload", str(data))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "uploaded file-" in out and "status: processed" in out
    assert "format: chat" in out and "rows: 40" in out and "errors: 0" in out


def test_cli_upload_of_a_bad_file_lists_errors_by_code_and_exits_1(live, api_key, tmp_path):
    data = tmp_path / "bad.jsonl"
    lines = [GOOD_LINE, "{not json\n", GOOD_LINE, '{"nope": 1}\n', "[oops\n", GOOD_LINE]
    data.write_text("".join(lines))
    result = run_cli(
        live, api_key, "datasets", "upload", str(data), "--base-url", f"{live.api_url}/v1"
    )
    assert result.exit_code == 1, result.output
    out = result.output
    assert "status: error" in out and "rows: 6" in out and "errors: 3" in out
    assert "invalid_json × 2" in out and "missing_messages × 1" in out
    assert "    line 2: " in out and "    line 5: " in out and "    line 4: " in out


def test_cli_sends_big_files_through_the_uploads_api_in_parts(live, api_key, tmp_path):
    data = tmp_path / "parts.jsonl"
    data.write_text(GOOD_LINE * 3000)  # ~220 KB: four parts of 64 KiB
    result = run_cli(live, api_key, "datasets", "upload", str(data), "--part-size", "65536")
    assert result.exit_code == 0, result.output
    assert "rows: 3000" in result.output and "errors: 0" in result.output
    file_id = result.output.split("uploaded ", 1)[1].split()[0]
    with session_scope() as session:
        upload = session.scalars(select(Upload).where(Upload.file_id == file_id)).one()
        assert upload.status == "completed" and upload.bytes == data.stat().st_size
        stored = session.get(File, file_id)
        assert stored is not None
        assert stored.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()


def test_cli_report_reads_an_existing_file(live, api_key, tmp_path):
    data = tmp_path / "r.jsonl"
    data.write_text(GOOD_LINE * 2)
    uploaded = run_cli(live, api_key, "datasets", "upload", str(data))
    file_id = uploaded.output.split("uploaded ", 1)[1].split()[0]
    result = run_cli(live, api_key, "datasets", "report", file_id)
    assert result.exit_code == 0, result.output
    assert file_id in result.output and "rows: 2" in result.output
    missing = run_cli(live, api_key, "datasets", "report", "file-nope")
    assert missing.exit_code == 1 and "No such file" in missing.output


def test_openai_sdk_files_create_and_chunked_upload(live, api_key, tmp_path):
    client = OpenAI(base_url=f"{live.api_url}/v1", api_key=api_key, max_retries=0)
    data = tmp_path / "sdk.jsonl"
    data.write_text(GOOD_LINE * 2000)
    raw = data.read_bytes()
    with data.open("rb") as f:
        created = client.files.create(file=f, purpose="fine-tune")
    assert created.bytes == len(raw) and created.filename == "sdk.jsonl"
    assert client.files.content(created.id).content == raw

    upload = client.uploads.upload_file_chunked(
        file=data,
        mime_type="text/jsonl",
        purpose="fine-tune",
        part_size=50_000,
        md5=hashlib.md5(raw).hexdigest(),
    )
    assert upload.status == "completed" and upload.file is not None
    assert upload.file.bytes == len(raw)
    assert client.files.content(upload.file.id).content == raw


def test_a_client_hanging_up_mid_upload_leaves_no_row_and_no_partial(live, api_key):
    before = file_count()
    boundary = "hangup"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jsonl"\r\n'
        "\r\n"
    ).encode()
    with socket.create_connection((live.settings.api_host, live.settings.api_port)) as sock:
        sock.sendall(
            (
                "POST /v1/files HTTP/1.1\r\nHost: test\r\n"
                f"Authorization: Bearer {api_key}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(head) + 50 * 1024 * 1024}\r\n\r\n"
            ).encode()
            + head
        )
        for _ in range(4):
            sock.sendall(GOOD_LINE.encode() * 10_000)  # ~3 MB of the promised 50 MB
        deadline = time.monotonic() + 10
        while not partials() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert partials(), "the server should be writing the file by now"
    deadline = time.monotonic() + 10
    while partials() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert partials() == []
    assert file_count() == before
    assert httpx.get(f"{live.api_url}/healthz").status_code == 200


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_large_streamed_upload_keeps_the_servers_memory_flat(live, api_key):
    size, block = 160 * 1024 * 1024, os.urandom(1024 * 1024)
    boundary = "bigone"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
    ).encode()
    tail = (
        f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
        f"fine-tune\r\n--{boundary}--\r\n"
    ).encode()
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:  # chunked: the server is not told the length
        yield head
        for i in range(size // len(block)):
            piece = block[i % 7 :] + block[: i % 7]
            digest.update(piece)
            yield piece
        yield tail

    pid = live.processes["api"].pid
    peak_before = _peak_rss_kib(pid)
    r = httpx.post(
        f"{live.api_url}/v1/files",
        headers={
            "Authorization": f"Bearer {api_key}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        content=body(),
        timeout=120,
    )
    assert r.status_code == 200, r.text
    assert r.json()["bytes"] == size and r.json()["sha256"] == digest.hexdigest()
    growth_mib = (_peak_rss_kib(pid) - peak_before) / 1024
    assert growth_mib < 48, f"API peak memory grew {growth_mib:.0f} MiB for a 160 MiB upload"
    auth = {"Authorization": f"Bearer {api_key}"}
    assert httpx.delete(f"{live.api_url}/v1/files/{r.json()['id']}", headers=auth).is_success
