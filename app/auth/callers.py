"""Who is calling the serving routes, remembered for a moment.

The completion routes are the hot path: resolving a key to its tenant and scopes, and the
tenant to its rate limits, took two database round trips and three thread hops per request,
about a third of the gateway's own CPU time (bench/serving, docs/benchmarks.md). A caller
resolved once is kept for `LORAPLEX_AUTH_CACHE_SECONDS` (default 2 s; 0 turns the cache off).
Revoking a key or changing a tenant's limits clears this process's entries once the change
commits, so the process that made the change enforces it at once; other API processes take
up to that many seconds to notice. Only the serving routes use it: management routes
always read the key from the database.
"""

import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import session_scope
from app.kit import after_commit
from app.ratelimits.bucket import Limits

MAX_ENTRIES = 10_000
FORGET = "auth_callers_forget"


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    key_prefix: str
    scopes: tuple[str, ...]
    limits: Limits


_entries: dict[str, tuple[float, Caller]] = {}
_lock = threading.Lock()


def lookup(key_hash: str) -> Caller | None:
    with _lock:
        entry = _entries.get(key_hash)
    if entry is None or entry[0] < time.monotonic():
        return None
    return entry[1]


def remember(key_hash: str, caller: Caller) -> None:
    ttl = get_settings().auth_cache_seconds
    if ttl <= 0:
        return
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[key_hash] = (time.monotonic() + ttl, caller)


def forget_all() -> None:
    with _lock:
        _entries.clear()


def forget_after_commit(session: Session) -> None:
    """Clear the cache once `session` commits (a key revoked, limits changed)."""
    after_commit.defer(session, FORGET, None)


@after_commit.handler(FORGET)
def _forget(_: list[None]) -> None:
    forget_all()


def load(key_hash: str, authorization: str | None) -> Caller:
    """Resolve the caller from the database (raises AuthenticationFailed); runs in a thread."""
    from app.auth import service  # these modules clear this cache: imported late, no cycle
    from app.ratelimits.service import limits_for

    with session_scope() as session:
        tenant, key = service.authenticate(session, authorization)
        caller = Caller(tenant.id, key.prefix, tuple(key.scopes), limits_for(session, tenant.id))
    remember(key_hash, caller)
    return caller
