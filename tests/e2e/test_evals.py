"""Evaluation on the real stack (Postgres, Redis, both Celery workers, vLLM, the API): two
real fine-tunes of SmolLM2-135M, eval runs through the serving gateway, the decision report,
the promotion gate, a forced promotion and a rollback that the gateway serves at once.

- `colours` learns to answer `{"item": i, "colour": c}`; base + system prompt answers prose,
  so the fine-tune measurably beats it on JSON validity.
- `tints` learns `{"item": i, "tint": c}`: valid JSON, but it breaks the regression suite's
  schema, so promoting it over `colours` is refused."""

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db import session_scope
from app.tenants.service import create_tenant
from tests.e2e.conftest import wait_for_job

BASE = "SmolLM2-135M-Instruct"
COLOURS = ["red", "green", "blue", "yellow", "purple"]
SCHEMA = {
    "type": "object",
    "properties": {"item": {"type": "integer"}, "colour": {"type": "string"}},
    "required": ["item", "colour"],
}
SYSTEM_PROMPT = "Answer with a JSON object only."


def ask(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Item {i} is {COLOURS[i % 5]}. What colour is it?"}]


def training_rows(key: str, n: int = 30) -> bytes:
    rows = [
        {
            "messages": [
                *ask(i),
                {"role": "assistant", "content": json.dumps({"item": i, key: COLOURS[i % 5]})},
            ]
        }
        for i in range(n)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def eval_rows() -> bytes:
    rows = []
    for tag, items in (("task", range(100, 112)), ("regression", range(200, 208))):
        for i in items:
            rows.append(
                {
                    "messages": ask(i),
                    "expected": {"item": i, "colour": COLOURS[i % 5]},
                    "tags": [tag],
                    "checks": {"json_schema": SCHEMA},
                }
            )
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


class Api:
    def __init__(self, base_url: str, key: str):
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=300
        )

    def ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = self.http.request(method, path, **kwargs)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def wait(self, path: str, done: set[str], timeout: float = 900) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.ok("GET", path)
            if body["status"] in done:
                return body
            time.sleep(2)
        raise TimeoutError(f"{path} still {body['status']}")

    def upload(self, data: bytes, purpose: str) -> str:
        r = self.http.post(
            "/v1/files", data={"purpose": purpose}, files={"file": ("f.jsonl", data)}
        )
        assert r.status_code == 200, r.text
        file_id = str(r.json()["id"])
        self.wait(f"/v1/files/{file_id}", {"processed", "error"}, timeout=300)
        return file_id

    def chat(self, model: str, i: int) -> str:
        body = {"model": model, "messages": ask(i), "max_tokens": 24, "temperature": 0}
        return str(
            self.ok("POST", "/v1/chat/completions", json=body)["choices"][0]["message"]["content"]
        )


@pytest.fixture(scope="module")
def world(stack, sdk, tmp_path_factory) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with session_scope() as session:
        _, key = create_tenant(session, f"evals-{secrets.token_hex(3)}")
    api = Api(stack.api_url, key)
    client = sdk(key)
    eval_file = api.upload(eval_rows(), "evals")
    # The colour job asks for its decision report up front: it starts when the job succeeds.
    report_request = {"eval_files": [eval_file], "system_prompt": SYSTEM_PROMPT, "max_tokens": 32}
    jobs = {}
    for key_name in ("colour", "tint"):
        path: Path = tmp_path_factory.mktemp("data") / f"{key_name}.jsonl"
        path.write_bytes(training_rows(key_name))
        with path.open("rb") as f:
            uploaded = client.files.create(file=f, purpose="fine-tune")
        jobs[key_name] = client.fine_tuning.jobs.create(
            model=BASE,
            training_file=uploaded.id,
            suffix=f"{key_name}s",
            seed=7,
            method={
                "type": "supervised",
                "supervised": {
                    "hyperparameters": {
                        "n_epochs": 2,
                        "batch_size": 2,
                        "learning_rate_multiplier": 10,
                    }
                },
            },
            extra_body={"decision_report": report_request} if key_name == "colour" else None,
        ).id
    finished = {k: wait_for_job(client, job_id) for k, job_id in jobs.items()}
    for job in finished.values():
        assert job.status == "succeeded", job.error
    return {"api": api, "eval_file": eval_file, "jobs": finished}


@pytest.fixture(scope="module")
def decision(world) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    api, job = world["api"], world["jobs"]["colour"]
    created = api.ok("GET", f"/v1/fine_tuning/jobs/{job.id}/decision_report")
    assert len(created["runs"]) == 2 and created["eval_files"] == [world["eval_file"]]
    return api.wait(
        f"/v1/fine_tuning/jobs/{job.id}/decision_report", {"succeeded", "failed"}, timeout=900
    )


def adapter_id(api: Api, job: Any) -> str:
    adapters = api.ok("GET", "/v1/adapters?limit=100")["data"]
    return next(a["id"] for a in adapters if a["name"] == job.fine_tuned_model)


def test_fine_tune_beats_base_plus_prompt_on_json_validity(world, decision):
    assert decision["status"] == "succeeded", decision["error"]
    report = decision["report"]
    json_valid = report["groups"]["task"]["json_valid"]
    assert json_valid["rows"] == 12
    assert json_valid["fine_tune"] > json_valid["baseline"]
    assert json_valid["ci95"][0] > 0, json_valid  # the gain is beyond bootstrap noise
    assert report["verdict"]["decision"] == "ship", report["verdict"]
    cost = report["cost"]
    ratio = cost["fine_tune"]["tokens_per_request"] / cost["baseline"]["tokens_per_request"]
    assert cost["token_cost_ratio"] == pytest.approx(ratio)
    api = world["api"]
    for run in decision["runs"]:
        body = api.ok("GET", f"/v1/eval_runs/{run['id']}")
        assert body["status"] == "succeeded" and body["progress"]["rows_done"] == 20
        assert body["metrics"]["latency_ms"]["p95"] >= body["metrics"]["latency_ms"]["p50"] > 0
        assert body["metrics"]["usage"]["completion_tokens"] > 0
    rows = api.ok("GET", f"/v1/eval_runs/{decision['runs'][1]['id']}/rows?limit=100")["data"]
    assert len(rows) == 20 and all(r["output"] is not None for r in rows)
    assert all("json_schema_valid" in r["scores"] for r in rows)


def test_a_regression_blocks_promotion_and_rollback_is_served_at_once(world, decision):
    api = world["api"]
    good = adapter_id(api, world["jobs"]["colour"])
    bad = adapter_id(api, world["jobs"]["tint"])
    api.ok("POST", "/v1/aliases", json={"name": "colours@prod", "adapter": good})
    run = api.ok(
        "POST",
        "/v1/eval_runs",
        json={"eval_file": world["eval_file"], "candidate": {"model": bad}, "max_tokens": 32},
    )
    run = api.wait(f"/v1/eval_runs/{run['id']}", {"succeeded", "failed", "cancelled"})
    assert run["status"] == "succeeded", run["error"]

    blocked = api.http.post("/v1/aliases/colours@prod/promote", json={"adapter": bad})
    assert blocked.status_code == 409, blocked.text
    assert blocked.json()["error"]["code"] == "promotion_blocked"
    assert "colour" in api.chat("colours@prod", 301)

    forced = api.ok(
        "POST",
        "/v1/aliases/colours@prod/promote",
        json={"adapter": bad, "force": True, "reason": "demo of an override"},
    )
    assert forced["forced"] is True and forced["alias"]["target"]["adapter_id"] == bad
    assert "tint" in api.chat("colours@prod", 302)

    rolled = api.ok("POST", "/v1/aliases/colours@prod/rollback")
    assert rolled["target"]["adapter_id"] == good
    served = api.chat("colours@prod", 303)
    assert "colour" in served and "tint" not in served
    history = api.ok("GET", "/v1/aliases/colours@prod/history")["data"]
    assert [e["action"] for e in history] == ["rollback", "promote_forced", "create"]


def test_cancel_stops_a_running_eval(world, decision):
    api = world["api"]
    run = api.ok(
        "POST",
        "/v1/eval_runs",
        json={"eval_file": world["eval_file"], "candidate": {"model": BASE}, "max_tokens": 64},
    )
    api.wait(f"/v1/eval_runs/{run['id']}", {"running", "succeeded"}, timeout=300)
    cancelled = api.http.post(f"/v1/eval_runs/{run['id']}/cancel")
    if cancelled.status_code == 400:  # it finished first: nothing left to stop
        pytest.skip("the run finished before it could be cancelled")
    assert cancelled.json()["status"] == "cancelled"
    time.sleep(5)
    after = api.ok("GET", f"/v1/eval_runs/{run['id']}")
    assert after["status"] == "cancelled" and after["progress"]["rows_done"] < 20
