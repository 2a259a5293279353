"""Eval files and eval runs through the API: purpose `evals`, validation with line numbers,
what a run may be created from, candidate resolution (an alias is pinned to its version),
listing, rows, cancel, tenant isolation, and decision reports refused before a job succeeds.
Runs that reach vLLM are in tests/e2e/test_evals.py."""

import json

import pytest

from app.db import session_scope
from app.models import EvalRun, EvalRunRow
from tests.app.test_aliases import BASE, make_adapter
from worker.tasks.datasets import validate_file

ASK = [{"role": "user", "content": "Item 3 is blue. Answer as JSON."}]
ROWS = [
    {"messages": ASK, "expected": {"item": 3, "colour": "blue"}, "tags": ["task"]},
    {"messages": ASK, "expected": "blue", "tags": ["regression"], "checks": {"label": "blue"}},
    {"messages": ASK, "expected": None, "tags": ["safety"], "checks": {"should_refuse": True}},
]


def jsonl(rows: list) -> bytes:  # type: ignore[type-arg]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def upload(client, headers, body: bytes, purpose: str = "evals", validate: bool = True) -> dict:  # type: ignore[no-untyped-def]
    r = client.post(
        "/v1/files", headers=headers, data={"purpose": purpose}, files={"file": ("e.jsonl", body)}
    )
    assert r.status_code == 200, r.text
    if validate:
        validate_file(r.json()["id"])  # the cpu worker's task, run here
    return client.get(f"/v1/files/{r.json()['id']}", headers=headers).json()


@pytest.fixture
def owner(make_tenant):  # type: ignore[no-untyped-def]
    tenant_id, key = make_tenant("ev")
    return tenant_id, {"Authorization": f"Bearer {key}"}


@pytest.fixture
def eval_file(client, owner) -> dict:  # type: ignore[no-untyped-def]
    return upload(client, owner[1], jsonl(ROWS))


def create(client, headers, **body):  # type: ignore[no-untyped-def]
    return client.post("/v1/eval_runs", headers=headers, json=body)


def test_eval_file_validates_with_the_eval_format(client, owner, eval_file):
    assert eval_file["purpose"] == "evals" and eval_file["status"] == "processed"
    report = client.get(f"/v1/files/{eval_file['id']}/report", headers=owner[1]).json()
    assert report["report"]["format"] == "eval" and report["report"]["valid_rows"] == 3


def test_bad_eval_rows_are_reported_by_line(client, owner):
    bad = jsonl([ROWS[0], {"messages": ASK, "expected": "x", "tags": ["vibes"]}])
    f = upload(client, owner[1], bad)
    assert f["status"] == "error"
    assert f["status_details"].startswith("line 2:") and "[invalid_tags]" in f["status_details"]


def test_training_rows_uploaded_as_evals_are_refused(client, owner):
    chat = {"messages": [*ASK, {"role": "assistant", "content": "blue"}]}
    f = upload(client, owner[1], jsonl([chat]))
    assert f["status"] == "error" and "[wrong_format]" in f["status_details"]


def test_a_run_of_a_base_model_with_prompt_and_few_shot_is_queued(client, owner, eval_file):
    few_shot = [
        {"role": "user", "content": "Item 1 is red."},
        {"role": "assistant", "content": "{}"},
    ]
    r = create(
        client,
        owner[1],
        eval_file=eval_file["id"],
        candidate={"model": BASE, "system_prompt": "Answer in JSON.", "few_shot": few_shot},
        judge={"rubric": "Valid JSON with the right colour."},
        max_tokens=64,
    )
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["object"] == "eval_run" and run["status"] == "queued"
    assert run["candidate"] == {
        "model": BASE,
        "alias": None,
        "adapter_id": None,
        "base_model": BASE,
        "system_prompt": "Answer in JSON.",
        "few_shot": few_shot,
    }
    assert run["progress"] == {"rows_done": 0, "rows_total": 3}
    assert run["judge"] == {"model": None, "rubric": "Valid JSON with the right colour."}
    assert client.get(f"/v1/eval_runs/{run['id']}", headers=owner[1]).json() == run


def test_an_alias_is_pinned_to_the_version_it_points_at(client, owner, eval_file):
    tenant_id, h = owner
    v1, v2 = make_adapter(tenant_id), make_adapter(tenant_id)
    r = client.post(
        "/v1/aliases",
        headers=h,
        json={"name": "bot@prod", "adapter": v1.id, "system_prompt": "Be brief."},
    )
    assert r.status_code == 200, r.text
    run = create(client, h, eval_file=eval_file["id"], candidate={"model": "bot@prod"}).json()
    client.post("/v1/aliases/bot@prod", headers=h, json={"adapter": v2.id})
    again = client.get(f"/v1/eval_runs/{run['id']}", headers=h).json()
    assert again["candidate"]["alias"] == "bot@prod"
    assert again["candidate"]["adapter_id"] == v1.id
    assert again["candidate"]["system_prompt"] == "Be brief."


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"candidate": {"model": "nope"}}, 404, "model_not_found", "candidate.model"),
        (
            {"candidate": {"model": BASE, "few_shot": [{"role": "system", "content": "x"}]}},
            400,
            "invalid_value",
            "candidate.few_shot.0.role",
        ),
        ({"candidate": {"model": BASE}, "max_tokens": 0}, 400, "invalid_value", "max_tokens"),
    ],
)
def test_bad_run_requests_name_the_param(client, owner, eval_file, body, status, code, param):
    r = create(client, owner[1], eval_file=eval_file["id"], **body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["param"] == param


def test_the_eval_file_must_be_a_validated_evals_file(client, owner):
    h = owner[1]
    training = upload(
        client, h, jsonl([{"messages": [*ASK, {"role": "assistant", "content": "x"}]}]), "fine-tune"
    )
    r = create(client, h, eval_file=training["id"], candidate={"model": BASE})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_file_purpose"
    pending = upload(client, h, jsonl(ROWS), validate=False)
    r = create(client, h, eval_file=pending["id"], candidate={"model": BASE})
    assert r.status_code == 409 and r.json()["error"]["code"] == "file_not_ready"
    broken = upload(client, h, jsonl([ROWS[0], {"messages": ASK, "expected": "x", "tags": ["?"]}]))
    r = create(client, h, eval_file=broken["id"], candidate={"model": BASE})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_eval_file"
    r = create(client, h, eval_file="file-nope", candidate={"model": BASE})
    assert r.status_code == 404 and r.json()["error"]["param"] == "eval_file"


def test_cancel_then_cancel_again(client, owner, eval_file):
    h = owner[1]
    run = create(client, h, eval_file=eval_file["id"], candidate={"model": BASE}).json()
    r = client.post(f"/v1/eval_runs/{run['id']}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["finished_at"] is not None
    again = client.post(f"/v1/eval_runs/{run['id']}/cancel", headers=h)
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "eval_run_not_cancellable"


def test_list_filters_by_file_and_rows_page_by_line(client, owner, eval_file):
    h = owner[1]
    other = upload(client, h, jsonl(ROWS[:1]))
    first = create(client, h, eval_file=eval_file["id"], candidate={"model": BASE}).json()
    create(client, h, eval_file=other["id"], candidate={"model": BASE})
    listed = client.get(f"/v1/eval_runs?eval_file={eval_file['id']}", headers=h).json()
    assert [r["id"] for r in listed["data"]] == [first["id"]]
    with session_scope() as session:
        for line in (1, 2, 3):
            session.add(
                EvalRunRow(
                    run_id=first["id"], line=line, tags=["task"], output="x", scores={"m": 1.0}
                )
            )
    page = client.get(f"/v1/eval_runs/{first['id']}/rows?limit=2", headers=h).json()
    assert [r["line"] for r in page["data"]] == [1, 2] and page["has_more"] is True
    rest = client.get(
        f"/v1/eval_runs/{first['id']}/rows?after={page['last_line']}", headers=h
    ).json()
    assert [r["line"] for r in rest["data"]] == [3] and rest["has_more"] is False
    assert rest["data"][0]["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}


def test_another_tenant_gets_404_for_every_run_route(client, owner, eval_file, make_tenant):
    run = create(client, owner[1], eval_file=eval_file["id"], candidate={"model": BASE}).json()
    _, key = make_tenant("ev-other")
    h = {"Authorization": f"Bearer {key}"}
    for method, path in [
        ("get", f"/v1/eval_runs/{run['id']}"),
        ("get", f"/v1/eval_runs/{run['id']}/rows"),
        ("post", f"/v1/eval_runs/{run['id']}/cancel"),
    ]:
        r = getattr(client, method)(path, headers=h)
        assert r.status_code == 404 and r.json()["error"]["code"] == "eval_run_not_found"
    r = create(client, h, eval_file=eval_file["id"], candidate={"model": BASE})
    assert r.status_code == 404 and r.json()["error"]["code"] == "file_not_found"
    assert client.get("/v1/eval_runs", headers=h).json()["data"] == []
    with session_scope() as session:
        assert session.get(EvalRun, run["id"]).status == "queued"


def test_decision_report_needs_a_succeeded_job(client, owner, eval_file):
    h = owner[1]
    training = upload(
        client, h, jsonl([{"messages": [*ASK, {"role": "assistant", "content": "x"}]}]), "fine-tune"
    )
    job = client.post(
        "/v1/fine_tuning/jobs", headers=h, json={"model": BASE, "training_file": training["id"]}
    ).json()
    r = client.post(
        f"/v1/fine_tuning/jobs/{job['id']}/decision_report",
        headers=h,
        json={"eval_files": [eval_file["id"]], "system_prompt": "Answer in JSON."},
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "job_not_succeeded"
    r = client.get(f"/v1/fine_tuning/jobs/{job['id']}/decision_report", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == "decision_report_not_found"


def test_a_redelivered_run_is_taken_over_from_the_start(client, owner, eval_file):
    from worker.evaluation.runner import _claim

    run = create(client, owner[1], eval_file=eval_file["id"], candidate={"model": BASE}).json()
    with session_scope() as session:  # as a worker that died after storing one row left it
        row = session.get(EvalRun, run["id"])
        row.status, row.rows_done = "running", 1
        session.add(EvalRunRow(run_id=run["id"], line=1, tags=[], output="x", scores={}))
    assert _claim(run["id"]) is None  # a plain duplicate delivery does not steal it
    claimed = _claim(run["id"], resume=True)
    assert claimed is not None and claimed.model == BASE and claimed.path.exists()
    body = client.get(f"/v1/eval_runs/{run['id']}", headers=owner[1]).json()
    assert body["status"] == "running" and body["progress"]["rows_done"] == 0
    assert client.get(f"/v1/eval_runs/{run['id']}/rows", headers=owner[1]).json()["data"] == []
