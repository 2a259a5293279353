"""Which replica serves a model: rendezvous (highest-random-weight) hashing keeps each adapter
on one replica, so it is loaded once, and moves only the adapters of a replica that leaves.
A replica that is too busy spills the request over to the least loaded healthy one."""

import hashlib
from collections.abc import Sequence
from typing import Protocol, TypeVar


class Routable(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def inflight(self) -> int: ...


R = TypeVar("R", bound=Routable)


def rendezvous_score(key: str, node: str) -> int:
    digest = hashlib.blake2b(f"{node}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_order(key: str, nodes: Sequence[str]) -> list[str]:
    """Nodes from most to least preferred for `key`; stable while the node set is."""
    return sorted(nodes, key=lambda node: rendezvous_score(key, node), reverse=True)


def choose(key: str, replicas: Sequence[R], spill_inflight: int) -> R:
    """The key's rendezvous replica, unless it has `spill_inflight` requests in flight and
    another replica has fewer: then the least loaded one (ties keep rendezvous order)."""
    if not replicas:
        raise ValueError("no replicas to choose from")
    by_url = {r.url: r for r in replicas}
    ordered = [by_url[url] for url in rendezvous_order(key, list(by_url))]
    preferred = ordered[0]
    if preferred.inflight < spill_inflight:
        return preferred
    least = min(ordered, key=lambda r: r.inflight)
    return least if least.inflight < preferred.inflight else preferred
