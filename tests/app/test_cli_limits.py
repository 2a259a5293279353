"""`loraplex tenants limits`: the operator's way to set a tenant's rate limits."""

import json

from typer.testing import CliRunner

from app.cli import cli
from app.config import get_settings
from app.db import session_scope
from app.models import Tenant
from app.ratelimits.service import limits_for
from app.tenants.repository import get_by_name


def run(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["tenants", "limits", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def tenant_name(make_tenant) -> str:  # type: ignore[no-untyped-def]
    tenant_id, _ = make_tenant("lim")
    with session_scope() as session:
        return session.get_one(Tenant, tenant_id).name


def test_set_one_limit_keeps_the_other_and_default_restores(make_tenant):
    name = tenant_name(make_tenant)
    settings = get_settings()
    assert run(name)["requests_per_minute"] == settings.rate_limit_rpm
    assert run(name, "--tpm", "5000")["tokens_per_minute"] == 5000
    both = run(name, "--rpm", "7")
    assert (both["requests_per_minute"], both["tokens_per_minute"]) == (7, 5000)
    with session_scope() as session:
        tenant = get_by_name(session, name)
        assert tenant is not None
        assert limits_for(session, tenant.id).requests_per_minute == 7
    restored = run(name, "--default")
    assert restored["requests_per_minute"] == settings.rate_limit_rpm
    assert restored["tokens_per_minute"] == settings.rate_limit_tpm


def test_unknown_tenant_exits_1():
    result = CliRunner().invoke(cli, ["tenants", "limits", "no-such-tenant", "--rpm", "5"])
    assert result.exit_code == 1
