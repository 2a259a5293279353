"""Run a few `flush()` callables in a worker thread every `interval` seconds, and once more at
shutdown: the request path only appends to memory, the database sees one batch per interval."""

import asyncio
import logging
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)


class PeriodicFlusher:
    def __init__(self, interval: float, flushes: Sequence[Callable[[], object]]):
        self.interval = interval
        self.flushes = list(flushes)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.flush_now()

    async def flush_now(self) -> None:
        for flush in self.flushes:
            try:
                await run_in_threadpool(flush)
            except Exception:
                log.exception("periodic flush failed; its batch is kept for the next one")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.flush_now()
