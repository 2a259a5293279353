"""The web UI in a real browser (Debian's chromium, driven by Playwright) against the real
platform: sign in → upload → report → fine-tune → loss curve → chat → promote to an alias →
alias history → adapter zip → Evaluations at 390 px. Screenshots of each page land in
artifacts/ui/."""

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from app.db import session_scope
from app.stack import Stack
from app.tenants.service import create_tenant
from tests.e2e.test_fine_tune_flow import chat_examples

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
ARTIFACTS = ROOT / "artifacts" / "ui"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
PII_ROW = (
    b'{"messages": [{"role": "user", "content": "Mail me at jo@example.com"},'
    b' {"role": "assistant", "content": "Noted."}]}\n'
)


@pytest.fixture(scope="session")
def frontend_dist() -> Path:
    """The UI the API serves, built from this checkout (before the stack starts, when this
    module runs alone)."""
    if not (FRONTEND / "node_modules").is_dir():
        pytest.fail("frontend/node_modules is missing: run `make setup` (npm ci)")
    subprocess.run(["npm", "run", "build"], cwd=FRONTEND, check=True, capture_output=True)
    return FRONTEND / "dist"


def test_whole_flow_in_chromium(frontend_dist: Path, stack: Stack, tmp_path: Path) -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make setup` installs Debian's chromium"
    page = httpx.get(stack.api_url + "/datasets", timeout=10)
    assert page.status_code == 200 and '<div id="root">' in page.text, (
        "the API does not serve the UI: frontend/dist must exist before the stack starts"
    )
    with session_scope() as session:
        tenant, key = create_tenant(session, f"ui-{secrets.token_hex(3)}")
    dataset, validation = tmp_path / "train-colours.jsonl", tmp_path / "valid-colours.jsonl"
    dataset.write_bytes(chat_examples(20) + PII_ROW)
    validation.write_bytes(b"".join(chat_examples(26).splitlines(keepends=True)[20:]))
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)

    result = subprocess.run(
        ["npx", "playwright", "test"],
        cwd=FRONTEND,
        env={
            **os.environ,
            "LORAPLEX_UI_URL": stack.api_url,
            "LORAPLEX_UI_API_KEY": key,
            "LORAPLEX_UI_TENANT": tenant.name,
            "LORAPLEX_UI_DATASET": str(dataset),
            "LORAPLEX_UI_VALIDATION": str(validation),
            "LORAPLEX_UI_ARTIFACTS": str(ARTIFACTS),
            "CHROMIUM_PATH": str(CHROMIUM),
            "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
            "CI": "1",
        },
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert len(shots) == 11, shots
