"""`GET /v1/fine_tuning/jobs/{id}/events?stream=true`: server-sent events from the database."""

import json

from tests.app.test_files import upload
from tests.app.test_jobs import MODEL, create


def read_stream(client, headers, job_id, **params):  # type: ignore[no-untyped-def]
    """Parse the whole stream into (event name, data) pairs; it ends once the job is terminal."""
    out, name, data = [], "message", []
    query = {"stream": "true", **params}
    with client.stream(
        "GET", f"/v1/fine_tuning/jobs/{job_id}/events", headers=headers, params=query
    ) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line == "":
                if data:
                    out.append((name, json.loads("\n".join(data))))
                name, data = "message", []
            elif line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line.split(":", 1)[1].strip())
    return out


def cancelled_job(client, headers):  # type: ignore[no-untyped-def]
    file_id = upload(client, headers).json()["id"]
    job = create(client, headers, model=MODEL, training_file=file_id).json()
    assert client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=headers).is_success
    return job["id"]


def test_stream_sends_job_then_events_oldest_first_and_ends_when_terminal(client, tenant):
    job_id = cancelled_job(client, tenant)
    received = read_stream(client, tenant, job_id)
    assert received[0][0] == "job"
    assert received[0][1]["id"] == job_id and received[0][1]["status"] == "cancelled"
    messages = [d["message"] for name, d in received if name == "message"]
    assert messages[0].startswith("Created fine-tuning job")
    assert messages[-1] == "Job cancelled by user."
    listed = client.get(f"/v1/fine_tuning/jobs/{job_id}/events", headers=tenant).json()["data"]
    assert [d["id"] for name, d in received if name == "message"] == [e["id"] for e in listed][::-1]


def test_stream_after_skips_events_already_seen(client, tenant):
    job_id = cancelled_job(client, tenant)
    first = [d for name, d in read_stream(client, tenant, job_id) if name == "message"]
    rest = [
        d
        for name, d in read_stream(client, tenant, job_id, after=first[0]["id"])
        if name == "message"
    ]
    assert [e["id"] for e in rest] == [e["id"] for e in first[1:]]


def test_stream_of_a_foreign_job_is_a_404_error_body(client, tenant, other_tenant):
    job_id = cancelled_job(client, tenant)
    r = client.get(
        f"/v1/fine_tuning/jobs/{job_id}/events", headers=other_tenant, params={"stream": "true"}
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "fine_tuning_job_not_found"
