"""Feedback tied to the adapter version that produced a completion, drift math, the drift
report, and the adapters listing."""

import time

import pytest

from app.db import session_scope
from app.feedback import drift
from app.feedback.completions import CompletionLog
from app.feedback.drift import Counts
from app.inference.schemas import ServedRequest
from app.kit.ids import new_id
from app.models import CompletionRecord, Feedback
from tests.app.test_aliases import BASE, make_adapter

DAY = 86_400


def completion(tenant_id: str, served_model: str, adapter_id=None, model=None) -> str:
    log = CompletionLog()
    completion_id = f"chatcmpl-{new_id('c')}"
    log.add(
        ServedRequest(
            tenant_id=tenant_id,
            model=model or served_model,
            served_model=served_model,
            adapter_id=adapter_id,
            completion_id=completion_id,
            prompt_tokens=1,
            completion_tokens=1,
            latency_ms=1,
            finished_at=time.time(),
        )
    )
    assert log.flush() == 1
    return completion_id


@pytest.fixture
def owner(make_tenant):
    tenant_id, key = make_tenant("fb")
    return tenant_id, {"Authorization": f"Bearer {key}"}


# --- drift math ---------------------------------------------------------------------------


def test_alert_when_down_rate_rises_beyond_the_margin_with_enough_volume():
    baseline = Counts(total=100, down=10)
    w = drift.assess_window("7d", (0, 1), Counts(50, 11), baseline, margin=0.10, min_volume=20)
    assert w.status == "alert" and w.delta == pytest.approx(0.12)


def test_no_alert_within_the_margin():
    baseline = Counts(total=100, down=10)
    w = drift.assess_window("7d", (0, 1), Counts(50, 9), baseline, margin=0.10, min_volume=20)
    assert w.status == "ok" and w.delta == pytest.approx(0.08)


def test_no_verdict_on_too_few_ratings_either_side():
    baseline, busy = Counts(100, 10), Counts(100, 90)
    assert drift.assess_window("24h", (0, 1), Counts(19, 19), baseline, 0.1, 20).status == (
        "insufficient_data"
    )
    assert drift.assess_window("24h", (0, 1), busy, Counts(19, 0), 0.1, 20).status == (
        "insufficient_data"
    )


def test_recent_windows_never_overlap_the_baseline_week():
    created = 1_000_000
    _, base_end = drift.baseline_span(created)
    assert base_end == created + 7 * DAY
    assert drift.window_span(created + 3 * DAY, 7 * DAY, base_end) == (base_end, created + 3 * DAY)
    assert drift.window_span(created + 20 * DAY, DAY, base_end) == (
        created + 19 * DAY,
        created + 20 * DAY,
    )


def test_overall_status_is_the_worst_window():
    def w(status: str) -> drift.WindowAssessment:
        return drift.WindowAssessment("x", 0, 1, Counts(0, 0), None, status)

    assert drift.overall([w("ok"), w("alert")]) == "alert"
    assert drift.overall([w("insufficient_data"), w("ok")]) == "ok"
    assert drift.overall([w("insufficient_data")]) == "insufficient_data"


# --- feedback API -------------------------------------------------------------------------


def test_feedback_lands_on_the_version_that_produced_the_completion(client, owner):
    tenant_id, h = owner
    v1, v2 = make_adapter(tenant_id), make_adapter(tenant_id)
    first = completion(tenant_id, v1.id, v1.id, model="bot")
    second = completion(tenant_id, v2.id, v2.id, model="bot")
    up = client.post("/v1/feedback", headers=h, json={"completion_id": first, "rating": "up"})
    assert up.status_code == 200, up.text
    assert up.json()["adapter_id"] == v1.id and up.json()["model"] == "bot"
    down = client.post(
        "/v1/feedback",
        headers=h,
        json={"completion_id": second, "rating": "down", "comment": "made things up"},
    ).json()
    assert down["adapter_id"] == v2.id and down["comment"] == "made things up"
    assert down["object"] == "feedback" and down["rating"] == "down"


def test_rating_again_replaces_the_rating(client, owner):
    tenant_id, h = owner
    cid = completion(tenant_id, BASE)
    first = client.post("/v1/feedback", headers=h, json={"completion_id": cid, "rating": "up"})
    again = client.post("/v1/feedback", headers=h, json={"completion_id": cid, "rating": "down"})
    assert again.json()["id"] == first.json()["id"] and again.json()["rating"] == "down"
    assert first.json()["adapter_id"] is None
    with session_scope() as session:
        assert session.query(Feedback).filter_by(completion_id=cid).count() == 1


def test_feedback_on_another_tenants_completion_is_404(client, owner, make_tenant):
    tenant_id, _ = owner
    cid = completion(tenant_id, BASE)
    _, key = make_tenant("x")
    r = client.post(
        "/v1/feedback",
        headers={"Authorization": f"Bearer {key}"},
        json={"completion_id": cid, "rating": "down"},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "completion_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"completion_id": "c", "rating": "meh"},
        {"rating": "up"},
        {"completion_id": "c", "rating": "up", "comment": "x" * 4001},
        {"completion_id": "c", "rating": "up", "adapter_id": "adapter-x"},
    ],
)
def test_invalid_feedback_is_400(client, owner, body):
    _, h = owner
    assert client.post("/v1/feedback", headers=h, json=body).status_code == 400


# --- adapters and drift reports -----------------------------------------------------------


def rate_many(tenant_id: str, adapter_id: str, at: int, up: int, down: int) -> None:
    with session_scope() as session:
        for i in range(up + down):
            cid = f"cmpl-{new_id('d')}"
            session.add(
                CompletionRecord(
                    id=cid,
                    tenant_id=tenant_id,
                    model="m",
                    served_model=adapter_id,
                    adapter_id=adapter_id,
                    created_at=at,
                )
            )
            session.flush()
            session.add(
                Feedback(
                    id=new_id("feedback"),
                    tenant_id=tenant_id,
                    completion_id=cid,
                    adapter_id=adapter_id,
                    served_model=adapter_id,
                    rating="down" if i < down else "up",
                    created_at=at,
                )
            )


def test_drift_alerts_when_thumbs_down_rises_after_the_first_week(client, owner):
    tenant_id, h = owner
    now = int(time.time())
    adapter = make_adapter(tenant_id, created_at=now - 20 * DAY)
    rate_many(tenant_id, adapter.id, now - 18 * DAY, up=27, down=3)  # baseline: 10% down
    rate_many(tenant_id, adapter.id, now - 3 * DAY, up=20, down=5)  # 7d: 20%
    rate_many(tenant_id, adapter.id, now - 3600, up=15, down=15)  # 24h: 50%
    report = client.get(f"/v1/adapters/{adapter.id}/drift", headers=h).json()
    assert report["status"] == "alert" and report["model"] == adapter.name
    assert report["baseline"]["ratings"] == 30 and report["baseline"]["complete"] is True
    assert report["baseline"]["down_rate"] == pytest.approx(0.1)
    windows = {w["window"]: w for w in report["windows"]}
    assert windows["24h"]["ratings"] == 30 and windows["24h"]["status"] == "alert"
    assert windows["7d"]["ratings"] == 55 and windows["7d"]["down_rate"] == pytest.approx(20 / 55)
    assert windows["7d"]["status"] == "alert"


def test_drift_is_ok_when_the_rate_holds(client, owner):
    tenant_id, h = owner
    now = int(time.time())
    adapter = make_adapter(tenant_id, created_at=now - 10 * DAY)
    rate_many(tenant_id, adapter.id, now - 9 * DAY, up=18, down=2)
    rate_many(tenant_id, adapter.id, now - DAY // 2, up=23, down=2)
    report = client.get(f"/v1/adapters/{adapter.id}/drift", headers=h).json()
    assert report["status"] == "ok"
    assert all(w["status"] == "ok" for w in report["windows"])


def test_a_new_adapter_has_no_drift_verdict_yet(client, owner):
    tenant_id, h = owner
    adapter = make_adapter(tenant_id)
    rate_many(tenant_id, adapter.id, int(time.time()), up=0, down=40)
    report = client.get(f"/v1/adapters/{adapter.id}/drift", headers=h).json()
    assert report["status"] == "insufficient_data"
    assert report["baseline"]["complete"] is False and report["baseline"]["ratings"] == 40


def test_adapters_list_and_retrieve_with_manifest(client, owner, make_tenant):
    tenant_id, h = owner
    a1, a2 = make_adapter(tenant_id), make_adapter(tenant_id)
    page = client.get("/v1/adapters?limit=1", headers=h).json()
    assert [a["id"] for a in page["data"]] == [a2.id] and page["has_more"]
    rest = client.get(f"/v1/adapters?after={a2.id}", headers=h).json()
    assert [a["id"] for a in rest["data"]] == [a1.id]
    one = client.get(f"/v1/adapters/{a1.id}", headers=h).json()
    assert one["object"] == "adapter" and one["name"] == a1.name
    assert one["manifest"]["seed"] == 1 and "storage_key" not in one
    _, key = make_tenant("peek")
    other = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/adapters", headers=other).json()["data"] == []
    for path in (f"/v1/adapters/{a1.id}", f"/v1/adapters/{a1.id}/drift"):
        r = client.get(path, headers=other)
        assert r.status_code == 404 and r.json()["error"]["code"] == "adapter_not_found"


def test_chat_with_an_adapter_trained_on_another_template_is_refused(client, owner):
    tenant_id, h = owner
    stale = make_adapter(tenant_id, template_sha256="f" * 64)
    r = client.post(
        "/v1/chat/completions",
        headers=h,
        json={"model": stale.name, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "chat_template_mismatch" and error["param"] == "model"
    assert "chat template" in error["message"] and "adapters/" not in error["message"]
