"""Gated promotion to an alias, alias history, forced promotion in the audit log, rollback.
Eval runs are written here as the worker writes them (their metrics in the worker's shape);
tests/e2e/test_evals.py produces them for real through vLLM."""

import pytest

from app.db import session_scope
from app.evals.gate import find_regressions
from app.kit.ids import new_id
from app.models import EvalRun
from tests.app.test_aliases import BASE, make_adapter
from tests.app.test_evals import ROWS, jsonl, upload


def metrics(regression: float, refusal_rate: float | None = 1.0) -> dict:
    return {
        "rows": 3,
        "by_tag": {
            "regression": {"exact_match": {"mean": regression, "rows": 10}},
            "task": {"json_valid": {"mean": 0.9, "rows": 10}},
        },
        "refusal": {
            "should_refuse_rows": 4,
            "refusal_rate": refusal_rate,
            "should_answer_rows": 0,
            "answer_rate": None,
        },
    }


def finished_run(tenant_id: str, file_id: str, adapter_id: str | None, m: dict, prompt=None) -> str:  # type: ignore[no-untyped-def]
    run = EvalRun(
        id=new_id("evalrun"),
        tenant_id=tenant_id,
        eval_file_id=file_id,
        model=adapter_id or BASE,
        adapter_id=adapter_id,
        base_model=BASE,
        system_prompt=prompt,
        options={"max_tokens": 16, "seed": 0, "judge": None},
        status="succeeded",
        metrics=m,
    )
    with session_scope() as session:
        session.add(run)
    return run.id


@pytest.fixture
def setup(client, make_tenant):  # type: ignore[no-untyped-def]
    tenant_id, key = make_tenant("promo")
    h = {"Authorization": f"Bearer {key}"}
    file_id = upload(client, h, jsonl(ROWS))["id"]
    v1, v2 = make_adapter(tenant_id), make_adapter(tenant_id)
    r = client.post("/v1/aliases", headers=h, json={"name": "bot@prod", "adapter": v1.id})
    assert r.status_code == 200
    return {"tenant": tenant_id, "h": h, "file": file_id, "v1": v1.id, "v2": v2.id}


def promote(client, s, **body):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/aliases/bot@prod/promote", headers=s["h"], json={"adapter": s["v2"], **body}
    )


def test_find_regressions_compares_guarded_metrics_only():
    compared, dropped = find_regressions(metrics(0.9), metrics(0.85, 0.5), threshold=0.02)
    assert compared == [
        "regression.exact_match",
        "safety.refusal_rate",
    ]
    assert [(r.metric, round(r.delta, 2)) for r in dropped] == [
        ("exact_match", -0.05),
        ("refusal_rate", -0.5),
    ]
    assert find_regressions(metrics(0.9), metrics(0.89), 0.02)[1] == []


def test_promotion_needs_eval_runs_of_both_versions(client, setup):
    finished_run(setup["tenant"], setup["file"], setup["v2"], metrics(1.0))
    r = promote(client, setup)
    assert r.status_code == 409 and r.json()["error"]["code"] == "evaluation_required"


def test_a_regression_blocks_promotion_and_force_needs_a_reason(client, setup):
    finished_run(setup["tenant"], setup["file"], setup["v1"], metrics(0.9))
    finished_run(setup["tenant"], setup["file"], setup["v2"], metrics(0.6))
    r = promote(client, setup)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "promotion_blocked"
    assert "regression exact_match 0.900 -> 0.600" in r.json()["error"]["message"]
    alias = client.get("/v1/aliases/bot@prod", headers=setup["h"]).json()
    assert alias["target"]["adapter_id"] == setup["v1"]
    r = promote(client, setup, force=True)
    assert r.status_code == 400 and r.json()["error"]["code"] == "reason_required"
    r = promote(client, setup, force=True, reason="hotfix for the launch; regression accepted")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["forced"] is True and body["alias"]["target"]["adapter_id"] == setup["v2"]
    assert body["gate"]["regressions"][0]["metric"] == "exact_match"
    events = client.get("/v1/audit_events", headers=setup["h"]).json()["data"]
    forced = [e for e in events if e["action"] == "alias.promote_forced"]
    assert len(forced) == 1
    assert forced[0]["reason"] == "hotfix for the launch; regression accepted"


def test_a_clean_candidate_is_promoted_then_rolled_back_with_history(client, setup):
    finished_run(setup["tenant"], setup["file"], setup["v1"], metrics(0.9))
    finished_run(setup["tenant"], setup["file"], setup["v2"], metrics(0.95))
    r = promote(client, setup)
    assert r.status_code == 200, r.text
    assert r.json()["forced"] is False and r.json()["gate"]["passed"] is True
    assert r.json()["alias"]["target"]["adapter_id"] == setup["v2"]
    assert promote(client, setup).json()["error"]["code"] == "already_current"
    r = client.post("/v1/aliases/bot@prod/rollback", headers=setup["h"])
    assert r.json()["target"]["adapter_id"] == setup["v1"]
    history = client.get("/v1/aliases/bot@prod/history", headers=setup["h"]).json()["data"]
    assert [(e["action"], e["adapter_id"], e["version"]) for e in history] == [
        ("rollback", setup["v1"], 3),
        ("promote", setup["v2"], 2),
        ("create", setup["v1"], 1),
    ]


def test_runs_with_another_system_prompt_do_not_count(client, setup):
    finished_run(setup["tenant"], setup["file"], setup["v1"], metrics(0.9))
    finished_run(setup["tenant"], setup["file"], setup["v2"], metrics(0.95), prompt="Be nice.")
    r = promote(client, setup)
    assert r.status_code == 409 and r.json()["error"]["code"] == "evaluation_required"


def test_another_tenant_cannot_promote_or_read_history(client, setup, make_tenant):
    _, key = make_tenant("promo-x")
    h = {"Authorization": f"Bearer {key}"}
    r = client.post("/v1/aliases/bot@prod/promote", headers=h, json={"adapter": setup["v2"]})
    assert r.status_code == 404
    assert client.get("/v1/aliases/bot@prod/history", headers=h).status_code == 404
