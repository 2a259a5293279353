"""Usage metering off the request path: the gateway adds each served request to an in-memory
aggregate keyed by (tenant, UTC day, model version); `flush()` (every
LORAPLEX_USAGE_FLUSH_INTERVAL seconds, from a worker thread) upserts one row per key. A
failed flush keeps its batch for the next one."""

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime

from app.db import session_scope
from app.inference.schemas import ServedRequest
from app.usage import repository

log = logging.getLogger(__name__)


@dataclass
class DailyCounts:
    adapter_id: str | None
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms_total: int = 0
    latency_ms_max: int = 0

    def merge(self, other: "DailyCounts") -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.latency_ms_total += other.latency_ms_total
        self.latency_ms_max = max(self.latency_ms_max, other.latency_ms_max)


UsageKey = tuple[str, date, str]  # tenant, day, served model


class UsageRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[UsageKey, DailyCounts] = {}

    def add(self, served: ServedRequest) -> None:
        day = datetime.fromtimestamp(served.finished_at, UTC).date()
        key = (served.tenant_id, day, served.served_model)
        one = DailyCounts(
            served.adapter_id,
            1,
            served.prompt_tokens,
            served.completion_tokens,
            served.latency_ms,
            served.latency_ms,
        )
        with self._lock:
            counts = self._pending.setdefault(key, DailyCounts(served.adapter_id))
            counts.merge(one)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write the pending aggregates; returns how many rows were upserted."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch:
                return 0
            try:
                with session_scope() as session:
                    repository.add_counts(session, batch)
            except Exception:
                with self._lock:
                    for key, counts in batch.items():
                        self._pending.setdefault(key, DailyCounts(counts.adapter_id)).merge(counts)
                raise
            return len(batch)
