"""Hostile input, generated from our own OpenAPI schema (schemathesis): whatever a client
sends to any route, the answer is never a server error — except the inference engine being
unreachable, which is a 503 — and every error is in OpenAI's shape."""

import secrets

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from app.db import session_scope
from app.tenants.service import create_tenant


def _openapi() -> dict:  # type: ignore[type-arg]
    from app.main import create_app

    return create_app().openapi()


schema = schemathesis.openapi.from_dict(_openapi())
ENGINE_DOWN = {"inference_unavailable", "inference_bad_response"}


@pytest.fixture(scope="module")
def fuzz_auth(live_api: str) -> dict[str, str]:
    with session_scope() as session:
        _, key = create_tenant(session, f"fuzz-{secrets.token_hex(4)}")
    return {"Authorization": f"Bearer {key}"}


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_openai_shaped_errors(case, live_api, fuzz_auth):  # type: ignore[no-untyped-def]
    response = case.call(base_url=live_api, headers=fuzz_auth, timeout=30)
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    if response.status_code < 400:
        return
    body = response.json()
    assert set(body) == {"error"}, where
    assert set(body["error"]) == {"message", "type", "param", "code"}, where
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], where
    if response.status_code >= 500:
        assert response.status_code == 503 and body["error"]["code"] in ENGINE_DOWN, where
