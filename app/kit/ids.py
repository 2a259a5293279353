"""Time-ordered, prefixed identifiers (`file-…`, `ftjob-…`): sorting by id sorts by creation,
which is what cursor pagination (`after`) and "newest first" lists rely on.

An id is 12 hex digits of Unix milliseconds and 16 of a random number. Within one process the
ids are strictly increasing: an id made in the same millisecond as the one before (or while
the clock stands or steps back) takes the previous one's time and its number plus one, so two
records made back to back list in the order they were made. Across processes, ids of the
same millisecond are ordered at random."""

import secrets
import threading
import time

_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, number) of the latest id made by this process


def new_id(prefix: str) -> str:
    global _last
    with _lock:
        millis = time.time_ns() // 1_000_000
        last_millis, last_number = _last
        if millis <= last_millis:
            millis, number = last_millis, last_number + 1
        else:
            number = secrets.randbits(63)  # room left to count up within the millisecond
        _last = (millis, number)
    return f"{prefix}-{millis:012x}{number:016x}"


def now() -> int:
    return int(time.time())
