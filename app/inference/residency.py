"""Which adapters each vLLM replica holds. Adapters have a lifecycle — loading → resident →
evicted — and residency is an LRU whose capacity is the replica's `--max-loras`; eviction
happens in one place (`AdapterResidency.acquire`). Concurrent first requests for an adapter
share one load. An adapter is pinned from the moment a request is routed to it until vLLM has
answered it (a plain request) or started streaming the answer (a stream), so it is never
evicted in between (vLLM's unload only unregisters the name: requests already inside the
engine finish with their own copy). Pinned adapters are not evicted even when the replica is
over capacity: under load with many distinct adapters the replica holds capacity + pinned."""

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable

from app.errors import UpstreamUnavailable
from app.inference.vllm_client import AdapterLoadFailed, VLLMClient
from app.kit.metrics import ADAPTER_EVICTIONS, ADAPTER_LOADS, RESIDENT_ADAPTERS

log = logging.getLogger(__name__)


class LRUSet:
    """Resident adapter names, least recently used first, with pin counts. Pure bookkeeping."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._order: OrderedDict[str, None] = OrderedDict()
        self._pins: Counter[str] = Counter()

    def __contains__(self, name: object) -> bool:
        return name in self._order

    def __len__(self) -> int:
        return len(self._order)

    def names(self) -> list[str]:
        """Least recently used first."""
        return list(self._order)

    def touch(self, name: str) -> None:
        self._order.move_to_end(name)

    def add(self, name: str) -> None:
        self._order[name] = None
        self._order.move_to_end(name)

    def discard(self, name: str) -> None:
        self._order.pop(name, None)

    def pin(self, name: str) -> None:
        self._pins[name] += 1

    def unpin(self, name: str) -> None:
        self._pins[name] -= 1
        if self._pins[name] <= 0:
            del self._pins[name]

    def pinned(self, name: str) -> bool:
        return self._pins[name] > 0

    def victims_for(self, name: str) -> list[str]:
        """What to evict, least recently used first, so that `name` fits (or, if it is already
        resident, so that the replica is back within capacity). Neither `name` nor a pinned
        adapter is ever chosen; if pinned ones fill the replica it runs over capacity until
        the next load or use trims it."""
        incoming = 0 if name in self._order else 1
        excess = len(self._order) + incoming - self.capacity
        victims: list[str] = []
        for candidate in self._order:
            if len(victims) >= excess:
                break
            if candidate != name and not self.pinned(candidate):
                victims.append(candidate)
        return victims

    def over_capacity(self) -> bool:
        return len(self._order) > self.capacity

    def reconcile(self, present: Iterable[str]) -> None:
        """Match what the replica reports: keep the known order, drop what it lost, and put
        adapters we did not know about first in line for eviction."""
        present_set = set(present)
        known = [n for n in self._order if n in present_set]
        unknown = sorted(present_set.difference(known))
        self._order = OrderedDict((n, None) for n in [*unknown, *known])


class AdapterResidency:
    """One replica's adapters: loads on first use, evicts the least recently used."""

    def __init__(self, client: VLLMClient, capacity: int, label: str):
        self.client = client
        self.lru = LRUSet(capacity)
        self.label = label
        self._lock = asyncio.Lock()  # one load or eviction at a time on this replica

    async def acquire(self, lora_name: str, lora_path: str) -> None:
        """Make sure the adapter is loaded and pin it; pair with `release`."""
        if lora_name not in self.lru or self.lru.over_capacity():
            async with self._lock:
                if lora_name in self.lru:
                    self.lru.touch(lora_name)
                await self._evict(self.lru.victims_for(lora_name))
                if lora_name not in self.lru:
                    await self._load(lora_name, lora_path)
        self.lru.touch(lora_name)
        self.lru.pin(lora_name)

    def release(self, lora_name: str) -> None:
        self.lru.unpin(lora_name)

    def forget(self, lora_name: str) -> None:
        self.lru.discard(lora_name)
        self._publish()

    def forget_all(self) -> None:
        self.lru.reconcile([])
        self._publish()

    async def reconcile(self) -> None:
        self.lru.reconcile(await self.client.loaded_adapters())
        self._publish()

    async def _evict(self, victims: list[str]) -> None:
        for victim in victims:
            self.lru.discard(victim)
            await self.client.unload_adapter(victim)
            ADAPTER_EVICTIONS.labels(self.label).inc()
            log.info("evicted adapter %s from %s", victim, self.label)
        if victims:
            self._publish()

    async def _load(self, lora_name: str, lora_path: str) -> None:
        try:
            await self.client.load_adapter(lora_name, lora_path)
        except AdapterLoadFailed as exc:
            # vLLM's message names the adapter's path: log it, never show it to the tenant.
            log.error("loading %s into %s failed: %s", lora_name, self.label, exc)
            ADAPTER_LOADS.labels(self.label, "failed").inc()
            raise UpstreamUnavailable(
                f"The inference engine could not load adapter '{lora_name}'.",
                code="adapter_load_failed",
            ) from None
        ADAPTER_LOADS.labels(self.label, "loaded").inc()
        self.lru.add(lora_name)
        self._publish()

    def _publish(self) -> None:
        RESIDENT_ADAPTERS.labels(self.label).set(len(self.lru))
