"""The audit log: recorded in the caller's transaction, listed per tenant, newest first."""

from app.audit import service
from app.db import session_scope


def test_recorded_events_are_listed_newest_first_and_filterable(client, make_tenant):
    tenant_id, key = make_tenant()
    headers = {"Authorization": f"Bearer {key}"}
    with session_scope() as session:
        service.record(
            session,
            tenant_id=tenant_id,
            action="api_key.create",
            target_type="api_key",
            target_id="key-1",
            actor="cli",
        )
        service.record(
            session,
            tenant_id=tenant_id,
            action="alias.promote",
            target_type="alias",
            target_id="bot@prod",
            reason="hotfix",
            detail={"adapter_id": "ft-a"},
        )

    page = client.get("/v1/audit_events", headers=headers).json()
    assert [e["action"] for e in page["data"]] == ["alias.promote", "api_key.create"]
    assert page["data"][0]["reason"] == "hotfix"
    assert page["data"][0]["detail"] == {"adapter_id": "ft-a"}

    only = client.get("/v1/audit_events?action=api_key.create", headers=headers).json()
    assert [e["target_id"] for e in only["data"]] == ["key-1"]


def test_a_rolled_back_change_leaves_no_audit_line(client, make_tenant):
    tenant_id, key = make_tenant()
    try:
        with session_scope() as session:
            service.record(
                session,
                tenant_id=tenant_id,
                action="adapter.delete",
                target_type="adapter",
                target_id="ft-x",
            )
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    page = client.get("/v1/audit_events", headers={"Authorization": f"Bearer {key}"}).json()
    assert page["data"] == []


def test_another_tenants_events_are_invisible(client, make_tenant):
    tenant_id, _ = make_tenant()
    _, other_key = make_tenant("other")
    with session_scope() as session:
        service.record(
            session,
            tenant_id=tenant_id,
            action="adapter.export",
            target_type="adapter",
            target_id="ft-y",
        )
    page = client.get("/v1/audit_events", headers={"Authorization": f"Bearer {other_key}"})
    assert page.json()["data"] == []
