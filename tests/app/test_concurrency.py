"""Many clients at once against a real server (uvicorn on Postgres and Redis): concurrent
uploads and job submissions lose nothing and duplicate nothing."""

import hashlib
import json
import secrets
from concurrent.futures import ThreadPoolExecutor

import httpx

from app.db import session_scope
from app.models import File, FineTuningJob
from app.tenants.service import create_tenant

CLIENTS = 24


def rows(i: int) -> bytes:
    row = {
        "messages": [
            {"role": "user", "content": f"request {i}"},
            {"role": "assistant", "content": f"answer {i}"},
        ]
    }
    return (json.dumps(row) + "\n").encode() * (1 + i % 7)


def test_concurrent_uploads_and_jobs_lose_and_duplicate_nothing(live_api):
    with session_scope() as session:
        tenant, key = create_tenant(session, f"busy-{secrets.token_hex(3)}")
    headers = {"Authorization": f"Bearer {key}"}

    def upload_then_submit(i: int) -> tuple[str, str, str]:
        with httpx.Client(base_url=live_api, headers=headers, timeout=120) as client:
            f = client.post(
                "/v1/files",
                data={"purpose": "fine-tune"},
                files={"file": (f"part-{i}.jsonl", rows(i))},
            )
            assert f.status_code == 200, f.text
            job = client.post(
                "/v1/fine_tuning/jobs",
                json={
                    "model": "SmolLM2-135M-Instruct",
                    "training_file": f.json()["id"],
                    "metadata": {"client": str(i)},
                },
            )
            assert job.status_code == 200, job.text
            return f.json()["id"], f.json()["sha256"], job.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(upload_then_submit, range(CLIENTS)))

    file_ids = {r[0] for r in results}
    job_ids = {r[2] for r in results}
    assert len(file_ids) == len(job_ids) == CLIENTS
    for i, (_, sha, _) in enumerate(results):
        assert sha == hashlib.sha256(rows(i)).hexdigest()

    with session_scope() as session:
        files = session.query(File).filter(File.tenant_id == tenant.id).all()
        jobs = session.query(FineTuningJob).filter(FineTuningJob.tenant_id == tenant.id).all()
    assert {f.id for f in files} == file_ids
    assert {j.id for j in jobs} == job_ids
    assert sorted(int(j.user_metadata["client"]) for j in jobs) == list(range(CLIENTS))
    assert {j.training_file for j in jobs} == file_ids
