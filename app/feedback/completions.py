"""The completion log: completion id → tenant and model version, for every served response
(streamed ones included), so feedback can be tied to the adapter version that produced it.
Like usage, records are buffered and written in one batch per flush interval."""

import threading

from app.db import session_scope
from app.feedback import repository
from app.inference.schemas import ServedRequest


class CompletionLog:
    def __init__(self, max_pending: int = 100_000):
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: list[ServedRequest] = []
        self.max_pending = max_pending

    def add(self, served: ServedRequest) -> None:
        if served.completion_id is None:
            return
        with self._lock:
            if len(self._pending) < self.max_pending:  # never grow without bound
                self._pending.append(served)

    def flush(self) -> int:
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                with session_scope() as session:
                    repository.add_completions(session, batch)
            except Exception:
                with self._lock:
                    self._pending = batch + self._pending
                raise
            return len(batch)
