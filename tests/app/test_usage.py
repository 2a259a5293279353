"""Usage metering: batched upserts per (tenant, day, model version) into real Postgres, the
/v1/usage report, and Prometheus metrics."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from app.db import session_scope
from app.inference.schemas import ServedRequest
from app.models import UsageDaily
from app.usage.recorder import UsageRecorder
from tests.app.test_aliases import BASE, make_adapter


def served(
    tenant_id: str, served_model: str, adapter_id=None, at=None, completion_id=None, **kw
) -> ServedRequest:
    fields = {"prompt_tokens": 10, "completion_tokens": 5, "latency_ms": 100}
    fields.update(kw)
    return ServedRequest(
        tenant_id=tenant_id,
        model=served_model,
        served_model=served_model,
        adapter_id=adapter_id,
        completion_id=completion_id,
        finished_at=at or time.time(),
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def owner(make_tenant):
    tenant_id, key = make_tenant("use")
    return tenant_id, {"Authorization": f"Bearer {key}"}


def test_recorder_aggregates_in_memory_and_upserts_one_row_per_key(owner):
    tenant_id, _ = owner
    recorder = UsageRecorder()
    for latency in (100, 300, 200):
        recorder.add(served(tenant_id, BASE, latency_ms=latency))
    assert recorder.pending() == 1
    assert recorder.flush() == 1 and recorder.pending() == 0
    recorder.add(served(tenant_id, BASE, latency_ms=50, completion_tokens=7))
    recorder.flush()
    with session_scope() as session:
        rows = session.query(UsageDaily).filter_by(tenant_id=tenant_id).all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.requests, row.prompt_tokens, row.completion_tokens) == (4, 40, 22)
    assert (row.latency_ms_total, row.latency_ms_max) == (650, 300)
    assert row.day == datetime.now(UTC).date()


def test_a_failed_flush_keeps_its_batch(owner, monkeypatch):
    tenant_id, _ = owner
    recorder = UsageRecorder()
    recorder.add(served(tenant_id, BASE))
    from app.usage import repository

    def broken(*_):
        raise RuntimeError("db down")

    monkeypatch.setattr(repository, "add_counts", broken)
    with pytest.raises(RuntimeError):
        recorder.flush()
    monkeypatch.undo()
    recorder.add(served(tenant_id, BASE))
    assert recorder.flush() == 1
    with session_scope() as session:
        assert session.query(UsageDaily).filter_by(tenant_id=tenant_id).one().requests == 2


def test_usage_report_by_day_model_and_range(client, owner):
    tenant_id, h = owner
    adapter = make_adapter(tenant_id)
    today = datetime.now(UTC)
    yesterday = today - timedelta(days=1)
    recorder = UsageRecorder()
    recorder.add(served(tenant_id, BASE, at=yesterday.timestamp()))
    recorder.add(served(tenant_id, adapter.id, adapter.id, prompt_tokens=3, completion_tokens=4))
    recorder.add(served(tenant_id, adapter.id, adapter.id, prompt_tokens=3, completion_tokens=4))
    recorder.flush()

    everything = client.get("/v1/usage", headers=h).json()
    assert everything["totals"] == {
        "requests": 3,
        "prompt_tokens": 16,
        "completion_tokens": 13,
        "total_tokens": 29,
    }
    by_model = {(d["date"], d["model"]): d for d in everything["data"]}
    day = by_model[(today.date().isoformat(), adapter.name)]
    assert day["adapter_id"] == adapter.id and day["requests"] == 2 and day["total_tokens"] == 14
    assert day["latency_ms_avg"] == 100.0 and day["latency_ms_max"] == 100
    assert (yesterday.date().isoformat(), BASE) in by_model

    only_today = client.get(f"/v1/usage?start_date={today.date().isoformat()}", headers=h).json()
    assert {d["model"] for d in only_today["data"]} == {adapter.name}
    for model in (adapter.name, adapter.id):
        filtered = client.get(f"/v1/usage?model={model}", headers=h).json()
        assert filtered["totals"]["requests"] == 2
    assert client.get(f"/v1/usage?model={BASE}", headers=h).json()["totals"]["requests"] == 1


def test_usage_by_alias_covers_its_current_and_previous_versions(client, owner):
    tenant_id, h = owner
    v1, v2 = make_adapter(tenant_id), make_adapter(tenant_id)
    client.post("/v1/aliases", headers=h, json={"name": "bot", "adapter": v1.id})
    client.post("/v1/aliases/bot", headers=h, json={"adapter": v2.id})
    recorder = UsageRecorder()
    for adapter in (v1, v2, v2):
        recorder.add(served(tenant_id, adapter.id, adapter.id))
    recorder.flush()
    report = client.get("/v1/usage?model=bot", headers=h).json()
    assert {d["adapter_id"]: d["requests"] for d in report["data"]} == {v1.id: 1, v2.id: 2}


def test_usage_is_tenant_scoped(client, owner, make_tenant):
    tenant_id, _ = owner
    recorder = UsageRecorder()
    recorder.add(served(tenant_id, BASE))
    recorder.flush()
    _, other_key = make_tenant("oth")
    other = client.get("/v1/usage", headers={"Authorization": f"Bearer {other_key}"}).json()
    assert other["data"] == [] and other["totals"]["requests"] == 0
    unknown = client.get(
        "/v1/usage?model=someone-elses", headers={"Authorization": f"Bearer {other_key}"}
    )
    assert unknown.json()["data"] == []


@pytest.mark.parametrize(
    "query,param",
    [
        ("start_date=2026-11-10&end_date=2026-11-01", "start_date"),
        ("start_date=2020-01-01&end_date=2026-01-01", "start_date"),
        ("start_date=yesterday", "start_date"),
    ],
)
def test_bad_ranges_are_400(client, owner, query, param):
    _, h = owner
    r = client.get(f"/v1/usage?{query}", headers=h)
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_usage_needs_a_key(client):
    assert client.get("/v1/usage").status_code == 401


def test_metrics_count_routes_by_template_without_tenant_data(client, owner):
    tenant_id, h = owner
    client.get("/v1/aliases/some-name", headers=h)
    text = client.get("/metrics").text
    assert 'loraplex_http_requests_total{method="GET",route="/v1/aliases/{name}",status="404"}' in (
        text
    )
    assert "loraplex_http_request_duration_seconds_bucket" in text
    assert "loraplex_inference_tokens_total" in text or "loraplex_rate_limited_total" in text
    assert tenant_id not in text and h["Authorization"][7:] not in text
    assert "some-name" not in text


def test_embedded_sqlite_upserts_usage_and_completion_records(tmp_path):
    """The embedded mode's SQLite takes the same batched upserts as Postgres."""
    from alembic import command
    from sqlalchemy.orm import Session

    from app.cli import alembic_config
    from app.db import make_engine
    from app.feedback import repository as feedback_repo
    from app.models import CompletionRecord, Tenant
    from app.usage import repository as usage_repo
    from app.usage.recorder import DailyCounts

    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url)
    day = datetime.now(UTC).date()
    with Session(engine) as session:
        session.add(Tenant(id="tenant-e", name="embedded"))
        session.flush()
        for latency in (30, 20):
            usage_repo.add_counts(
                session, {("tenant-e", day, BASE): DailyCounts(None, 1, 2, 3, latency, latency)}
            )
        one = served("tenant-e", BASE, completion_id=None)
        with_id = ServedRequest(**{**one.__dict__, "completion_id": "cmpl-1"})
        feedback_repo.add_completions(session, [with_id])
        feedback_repo.add_completions(session, [with_id])  # a replayed batch is harmless
        session.commit()
        row = session.query(UsageDaily).one()
        assert (row.requests, row.prompt_tokens, row.latency_ms_total, row.latency_ms_max) == (
            2,
            4,
            50,
            30,
        )
        assert session.query(CompletionRecord).count() == 1
    engine.dispose()
