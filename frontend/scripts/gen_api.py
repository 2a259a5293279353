"""Generate src/api/schema.ts (TypeScript types of every API route) from the FastAPI app's
OpenAPI document, with openapi-typescript. `--check` only compares and exits 1 when the
committed file is stale.

    PYTHONPATH=. .venv/bin/python frontend/scripts/gen_api.py [--check]
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

FRONTEND = Path(__file__).resolve().parent.parent
SCHEMA_TS = FRONTEND / "src" / "api" / "schema.ts"
OPENAPI_TS = FRONTEND / "node_modules" / ".bin" / "openapi-typescript"


def generate() -> str:
    from app.main import create_app

    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "openapi.json", Path(tmp) / "schema.ts"
        spec.write_text(json.dumps(create_app().openapi(), indent=2, sort_keys=True))
        subprocess.run(
            # A field with a default is optional in a request body, so not "non-nullable".
            [str(OPENAPI_TS), str(spec), "-o", str(out), "--default-non-nullable=false"],
            check=True,
            cwd=FRONTEND,
            capture_output=True,
        )
        return out.read_text()


def main() -> int:
    fresh = generate()
    if "--check" in sys.argv[1:]:
        if SCHEMA_TS.exists() and SCHEMA_TS.read_text() == fresh:
            return 0
        print(f"{SCHEMA_TS} is stale: run `npm run gen:api` in frontend/", file=sys.stderr)
        return 1
    SCHEMA_TS.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
