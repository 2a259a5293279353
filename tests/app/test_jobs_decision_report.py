"""A decision report requested with the job: checked at creation, queued by itself when the
job succeeds, and a report that cannot start leaves the job succeeded with a warning event."""

from sqlalchemy import update

from app.db import session_scope
from app.models import FineTuningJob
from tests.app.test_aliases import BASE, make_adapter
from tests.app.test_evals import ROWS, jsonl
from tests.app.test_evals import upload as upload_eval_file
from tests.app.test_files import upload
from worker.training.publish import request_decision_report


def create_job(client, headers, **extra):  # type: ignore[no-untyped-def]
    training = upload(client, headers).json()["id"]
    return client.post(
        "/v1/fine_tuning/jobs",
        headers=headers,
        json={"model": BASE, "training_file": training, **extra},
    )


def succeed(tenant_id: str, job_id: str) -> str:
    """What publish.py leaves behind: the job succeeded with its adapter registered."""
    adapter = make_adapter(tenant_id)
    with session_scope() as session:
        session.execute(
            update(FineTuningJob)
            .where(FineTuningJob.id == job_id)
            .values(status="succeeded", fine_tuned_model=adapter.name)
        )
    return adapter.id


def test_the_report_is_queued_when_the_job_succeeds(client, make_tenant):
    tenant_id, key = make_tenant("dr")
    h = {"Authorization": f"Bearer {key}"}
    eval_file = upload_eval_file(client, h, jsonl(ROWS))["id"]
    request = {"eval_files": [eval_file], "system_prompt": "Answer in JSON.", "max_tokens": 16}
    r = create_job(client, h, decision_report=request)
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["decision_report_request"]["eval_files"] == [eval_file]
    none_yet = client.get(f"/v1/fine_tuning/jobs/{job['id']}/decision_report", headers=h)
    assert none_yet.status_code == 404

    adapter_id = succeed(tenant_id, job["id"])
    request_decision_report(job["id"])

    report = client.get(f"/v1/fine_tuning/jobs/{job['id']}/decision_report", headers=h).json()
    assert report["status"] == "running" and len(report["runs"]) == 2
    assert report["adapter_id"] == adapter_id
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", headers=h).json()["data"]
    assert any(e["message"].startswith("Decision report") for e in events)

    request_decision_report(job["id"])  # idempotent enough: a second call adds a new report
    assert (
        client.get(f"/v1/fine_tuning/jobs/{job['id']}", headers=h).json()["status"] == "succeeded"
    )


def test_a_foreign_or_unknown_eval_file_is_refused_at_creation(client, make_tenant):
    _, key = make_tenant("dr")
    _, other_key = make_tenant("other")
    h, other = {"Authorization": f"Bearer {key}"}, {"Authorization": f"Bearer {other_key}"}
    foreign = upload_eval_file(client, other, jsonl(ROWS))["id"]
    r = create_job(client, h, decision_report={"eval_files": [foreign]})
    assert r.status_code == 404
    assert r.json()["error"]["param"] == "decision_report.eval_files.0"
    assert client.get("/v1/fine_tuning/jobs", headers=h).json()["data"] == []


def test_a_report_that_cannot_start_leaves_the_job_succeeded(client, make_tenant):
    tenant_id, key = make_tenant("dr")
    h = {"Authorization": f"Bearer {key}"}
    eval_file = upload_eval_file(client, h, jsonl(ROWS))["id"]
    job = create_job(client, h, decision_report={"eval_files": [eval_file]}).json()
    assert client.delete(f"/v1/files/{eval_file}", headers=h).status_code == 200
    succeed(tenant_id, job["id"])
    request_decision_report(job["id"])

    assert (
        client.get(f"/v1/fine_tuning/jobs/{job['id']}", headers=h).json()["status"] == "succeeded"
    )
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", headers=h).json()["data"]
    warning = next(e for e in events if "could not be started" in e["message"])
    assert warning["level"] == "warn"
    missing = client.get(f"/v1/fine_tuning/jobs/{job['id']}/decision_report", headers=h)
    assert missing.status_code == 404
