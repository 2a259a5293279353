"""A full disk during an upload: a clear 507, no file row, no partial blob left behind, and
the server keeps answering. The data directory is a 1 MiB tmpfs (needs root to mount)."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.db import session_scope
from app.tenants.service import create_tenant


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def api_on(tiny_disk: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "LORAPLEX_DATA_DIR": str(tiny_disk), "LORAPLEX_API_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "API did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_upload_that_fills_the_disk_is_refused_and_leaves_nothing(api_on, tiny_disk):
    with session_scope() as session:
        _, key = create_tenant(session, f"disk-{os.urandom(3).hex()}")
    headers = {"Authorization": f"Bearer {key}"}
    line = (
        b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n'
    )
    body = line * (3 * 1024 * 1024 // len(line))  # 3 MiB onto a 1 MiB disk

    r = httpx.post(
        api_on + "/v1/files",
        headers=headers,
        data={"purpose": "fine-tune"},
        files={"file": ("big.jsonl", body)},
        timeout=60,
    )
    assert r.status_code == 507, r.text
    assert r.json()["error"]["code"] == "insufficient_storage"
    assert httpx.get(api_on + "/v1/files", headers=headers).json()["data"] == []
    left = [p.name for p in tiny_disk.rglob("*") if p.is_file()]
    assert left == [], left

    # The disk has room again for a small file: the server still works.
    small = httpx.post(
        api_on + "/v1/files",
        headers=headers,
        data={"purpose": "fine-tune"},
        files={"file": ("small.jsonl", line)},
        timeout=60,
    )
    assert small.status_code == 200, small.text
