"""Settings refuse the default secret outside dev and test, and never show a secret: not in
their repr, not in the error that refuses a configuration, not in a log line."""

import logging

import pytest
from pydantic import ValidationError

from app.config import Settings, get_settings
from app.kit.redact import RedactSecrets, redact

SECRETS = {
    "LORAPLEX_JUDGE_API_KEY": "judge-key-c2VjcmV0",
    "DATABASE_URL": "postgresql://u:db-password-c2VjcmV0@db/loraplex",
    "REDIS_URL": "redis://:redis-password-c2VjcmV0@redis/0",
}


@pytest.mark.parametrize("environment", ["prod", "production", "staging", ""])
def test_the_default_secret_is_refused_outside_dev(monkeypatch, environment):
    monkeypatch.delenv("LORAPLEX_SECRET_KEY", raising=False)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LORAPLEX_ENV", environment)
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]
    message = str(refused.value)
    assert "LORAPLEX_SECRET_KEY must be set" in message
    assert not [v for v in SECRETS.values() if v in message or "c2VjcmV0" in message]


@pytest.mark.parametrize("environment", ["dev", "test"])
def test_the_default_secret_is_accepted_in_dev_and_test(monkeypatch, environment):
    monkeypatch.delenv("LORAPLEX_SECRET_KEY", raising=False)
    monkeypatch.setenv("LORAPLEX_ENV", environment)
    assert Settings(_env_file=None).secret_key == "dev-insecure-secret"  # type: ignore[call-arg]


def test_a_set_secret_is_accepted_in_production_and_never_shown(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LORAPLEX_ENV", "prod")
    monkeypatch.setenv("LORAPLEX_SECRET_KEY", "pepper-c2VjcmV0-pepper")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.secret_key == "pepper-c2VjcmV0-pepper"
    for shown in (repr(settings), str(settings), f"{settings!r}"):
        assert "c2VjcmV0" not in shown


def test_log_records_are_redacted(monkeypatch):
    monkeypatch.setattr(get_settings(), "secret_key", "pepper-0123456789")
    key = "lpx-AbCdEf" + "x" * 36
    assert redact(f"GET /v1/models?api_key={key}&limit=2") == "GET /v1/models?api_key=***&limit=2"
    assert redact(f"Bearer {key}") == "Bearer lpx-AbCdEf***"
    assert redact("?token=abc&x=1&Password=p") == "?token=***&x=1&Password=***"
    assert redact("pepper is pepper-0123456789.") == "pepper is ***."
    # uvicorn's access formatter unpacks the arguments: they stay a tuple.
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", f"/v1/files?key={key}", "1.1", 401), None,
    )  # fmt: skip
    assert RedactSecrets().filter(record)
    assert record.args == ("127.0.0.1:1", "GET", "/v1/files?key=***", "1.1", 401)
    assert key[10:] not in record.getMessage()
