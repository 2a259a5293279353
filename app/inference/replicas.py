"""The vLLM replicas behind the gateway: routing (rendezvous hashing with spill-over), health
checks (an unhealthy replica is skipped and reinstated once it answers again) and, per
replica, adapter residency. A replica that comes back is reconciled from its `/v1/models`,
so adapters it lost in a restart are reloaded on their next request."""

import asyncio
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.errors import UpstreamUnavailable
from app.inference.residency import AdapterResidency
from app.inference.routing import choose
from app.inference.vllm_client import VLLMClient
from app.kit.metrics import REPLICA_HEALTHY

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Replica:
    url: str
    client: VLLMClient
    residency: AdapterResidency
    healthy: bool = True
    reconciled: bool = False
    inflight: int = 0
    _probe: asyncio.Lock = field(default_factory=asyncio.Lock)


class ReplicaPool:
    def __init__(
        self,
        urls: Iterable[str],
        capacity: int,
        spill_inflight: int = 16,
        health_interval: float = 5.0,
    ):
        self.replicas: list[Replica] = []
        for url in urls:
            client = VLLMClient(url)
            self.replicas.append(Replica(url, client, AdapterResidency(client, capacity, url)))
        if not self.replicas:
            raise ValueError("at least one vLLM URL is needed")
        self.spill_inflight = spill_inflight
        self.health_interval = health_interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._health_loop())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for replica in self.replicas:
            await replica.client.aclose()

    def healthy(self) -> list[Replica]:
        return [r for r in self.replicas if r.healthy]

    async def pick(self, key: str | None) -> Replica:
        """The replica for `key` (an adapter: sticky) or the least loaded one (`None`: the base
        model, which every replica serves). If none looks healthy, probe them all once right
        now — the last check may be stale — before giving up."""
        candidates = self.healthy()
        if not candidates:
            await self.check_all()
            candidates = self.healthy()
        if not candidates:
            raise UpstreamUnavailable(
                "No inference replica is available right now; retry shortly.",
                code="inference_unavailable",
            )
        if key is None:
            random.shuffle(candidates)
            return min(candidates, key=lambda r: r.inflight)
        return choose(key, candidates, self.spill_inflight)

    def mark_down(self, replica: Replica) -> None:
        if replica.healthy:
            log.warning("replica %s is unreachable; skipping it until it answers", replica.url)
        replica.healthy = False
        REPLICA_HEALTHY.labels(replica.url).set(0)

    async def check(self, replica: Replica) -> None:
        async with replica._probe:
            ok = await replica.client.healthy()
            if not ok:
                self.mark_down(replica)
                replica.reconciled = False
                return
            if not replica.healthy or not replica.reconciled:
                try:
                    await replica.residency.reconcile()
                except UpstreamUnavailable:
                    self.mark_down(replica)
                    return
                if not replica.healthy:
                    log.info("replica %s answers again; reinstated", replica.url)
                replica.reconciled = True
            replica.healthy = True
            REPLICA_HEALTHY.labels(replica.url).set(1)

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(r) for r in self.replicas))

    async def _health_loop(self) -> None:
        while True:
            try:
                await self.check_all()
            except Exception:
                log.exception("replica health check failed")
            await asyncio.sleep(self.health_interval)
