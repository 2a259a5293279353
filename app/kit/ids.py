"""Time-ordered, prefixed identifiers (`file-…`, `ftjob-…`): sorting by id sorts by creation,
which is what cursor pagination (`after`) relies on."""

import secrets
import time


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    return f"{prefix}-{millis:012x}{secrets.token_hex(8)}"


def now() -> int:
    return int(time.time())
