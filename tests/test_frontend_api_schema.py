"""The web UI's typed client is generated from the API's OpenAPI document; a route or schema
change without `npm run gen:api` in frontend/ fails here."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_frontend_schema_matches_the_api() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "frontend" / "scripts" / "gen_api.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
