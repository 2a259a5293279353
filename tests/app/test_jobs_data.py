"""Job data options: `drop_invalid` and `dedup` at creation, what validation records on the
job (rows dropped, final sha256, token counts with the job's own settings), and the manifest
fields the trainer receives."""

import hashlib
import json

from app.db import session_scope
from app.models import File, FineTuningJob
from tests.app.test_files import upload
from worker.datasets.service import validate_stored_file
from worker.tasks.jobs import validate_job
from worker.training.launch import _train_config

MODEL = "SmolLM2-135M-Instruct"


def chat(q: str, a: str) -> bytes:
    row = {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
    return json.dumps(row).encode() + b"\n"


GOOD = [chat(f"question number {i}", f"answer number {i} " * (1 + i % 5)) for i in range(6)]
DIRTY = GOOD[0] + b"{broken\n" + GOOD[1] + GOOD[0] + GOOD[2] + b"[]\n" + GOOD[3]


def uploaded(client, headers, body: bytes) -> str:
    file_id = upload(client, headers, body=body).json()["id"]
    with session_scope() as session:  # what the cpu worker does after the upload
        validate_stored_file(session, session.get(File, file_id))
    return file_id


def create(client, headers, **body):
    return client.post("/v1/fine_tuning/jobs", headers=headers, json={"model": MODEL, **body})


def test_a_bad_file_is_refused_without_drop_invalid_and_accepted_with_it(client, tenant):
    file_id = uploaded(client, tenant, DIRTY)
    refused = create(client, tenant, training_file=file_id)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_training_file"

    r = create(client, tenant, training_file=file_id, drop_invalid=True)
    assert r.status_code == 200, r.text
    assert r.json()["data_options"] == {"drop_invalid": True, "dedup": False}


def test_validation_drops_rows_and_records_the_final_dataset(client, tenant, tmp_path):
    file_id = uploaded(client, tenant, DIRTY)
    job_id = create(client, tenant, training_file=file_id, drop_invalid=True, dedup=True).json()[
        "id"
    ]
    validate_job(job_id)

    job = client.get(f"/v1/fine_tuning/jobs/{job_id}", headers=tenant).json()
    assert job["status"] == "queued"
    plan = job["data_preparation"]
    expected = GOOD[0] + GOOD[1] + GOOD[2] + GOOD[3]
    assert (plan["rows_in"], plan["rows_kept"]) == (7, 4)
    assert (plan["dropped_invalid"], plan["invalid_lines"]) == (2, [2, 6])
    assert (plan["dropped_duplicates"], plan["duplicate_lines"]) == (1, [4])
    assert plan["final_dataset_sha256"] == hashlib.sha256(expected).hexdigest()
    assert plan["tokens"]["counted_rows"] == 4 and plan["estimate"]["n_epochs"] == 3

    events = client.get(f"/v1/fine_tuning/jobs/{job_id}/events", headers=tenant).json()["data"]
    assert any("Training on 4 of 7 rows" in e["message"] for e in events)

    with session_scope() as session:  # what the trainer is handed
        job_row = session.get(FineTuningJob, job_id)
        config = _train_config(session, job_row, tmp_path)
    assert open(config["training_path"], "rb").read() == expected
    assert config["data_preparation"]["final_dataset_sha256"] == plan["final_dataset_sha256"]
    assert config["data_preparation"]["dropped_duplicates"] == 1
    assert config["dataset_sha256"] == hashlib.sha256(DIRTY).hexdigest()
    # The training fast path by default, and so recorded for the recipe.
    assert config["packing"] is True and config["max_tokens_per_batch"] is None


def test_drop_invalid_still_refuses_a_file_with_no_valid_row(client, tenant):
    file_id = uploaded(client, tenant, b"{x\n[]\n")
    r = create(client, tenant, training_file=file_id, drop_invalid=True)
    assert r.status_code == 400 and r.json()["error"]["param"] == "training_file"


def test_dedup_on_a_file_not_yet_reported_validates_it_first(client, tenant):
    file_id = upload(client, tenant, body=GOOD[0] + GOOD[0]).json()["id"]
    job_id = create(client, tenant, training_file=file_id, dedup=True).json()["id"]
    validate_job(job_id)
    job = client.get(f"/v1/fine_tuning/jobs/{job_id}", headers=tenant).json()
    assert job["status"] == "queued"
    assert (
        job["data_preparation"]["rows_kept"],
        job["data_preparation"]["dropped_duplicates"],
    ) == (1, 1)


def test_tokens_are_recounted_with_the_jobs_max_seq_length(client, tenant):
    file_id = uploaded(client, tenant, b"".join(GOOD))
    report = client.get(f"/v1/files/{file_id}/report", headers=tenant).json()["report"]
    assert report["tokens"]["max_seq_length"] == 1024 and report["tokens"]["truncated_rows"] == 0

    r = create(client, tenant, training_file=file_id, hyperparameters={"max_seq_length": 32})
    validate_job(r.json()["id"])
    job = client.get(f"/v1/fine_tuning/jobs/{r.json()['id']}", headers=tenant).json()
    tokens = job["data_preparation"]["tokens"]
    assert tokens["max_seq_length"] == 32 and tokens["tokenizer"] == MODEL
    assert tokens["truncated_rows"] > 0
    assert tokens["tokens_after_truncation"] < report["tokens"]["tokens_after_truncation"]
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", headers=tenant).json()
    assert any("longer than max_seq_length 32" in e["message"] for e in events["data"])


def test_without_options_the_file_is_used_as_uploaded(client, tenant):
    file_id = uploaded(client, tenant, b"".join(GOOD))
    job_id = create(client, tenant, training_file=file_id).json()["id"]
    validate_job(job_id)
    job = client.get(f"/v1/fine_tuning/jobs/{job_id}", headers=tenant).json()
    digest = hashlib.sha256(b"".join(GOOD)).hexdigest()
    assert job["data_preparation"]["final_dataset_sha256"] == digest
    assert "storage_key" not in job["data_preparation"]
