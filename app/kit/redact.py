"""Secrets never reach a log line. The API never logs a key itself, but others do on its
behalf: uvicorn's access log writes each request's full path, so a client that puts its key
in a query string (`?api_key=lpx-…`) would have it written to disk. A filter on every log
handler masks API keys (all but their public 10-character prefix), the values of
secret-looking query parameters, and the server's own secret key."""

import logging
import re

from app.config import get_settings

API_KEY = re.compile(r"(lpx-[A-Za-z0-9_-]{6})[A-Za-z0-9_-]+")
SECRET_PARAM = re.compile(
    r"([?&](?:api[_-]?key|key|token|access[_-]?token|secret|password)=)[^&\s\"']*",
    re.IGNORECASE,
)
MASK = "***"
# Loggers whose handlers uvicorn (and a dictConfig) set up; the root's serve all others.
HANDLER_LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "celery")


def redact(text: str) -> str:
    text = API_KEY.sub(rf"\1{MASK}", text)
    text = SECRET_PARAM.sub(rf"\1{MASK}", text)
    secret = get_settings().secret_key
    return text.replace(secret, MASK) if len(secret) >= 8 else text


def _redacted(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and string arguments in place (arguments stay a tuple:
    uvicorn's access formatter unpacks them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v) for k, v in record.args.items()}
        return True


def install_redaction() -> None:
    """Add the filter to every handler configured so far (idempotent)."""
    for name in HANDLER_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(RedactSecrets())
