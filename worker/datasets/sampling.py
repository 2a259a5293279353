"""A seeded uniform sample of k rows in constant memory, independent of how the file is split
among processes: every row gets a pseudo-random key from (seed, line number) and the k rows
with the smallest keys are kept (reservoir sampling by random keys). Samples from separate
parts of a file merge into the sample of the whole."""

import heapq
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any


def sample_key(seed: int, line: int) -> int:
    return int.from_bytes(blake2b(f"{seed}:{line}".encode(), digest_size=8).digest(), "big")


@dataclass
class Reservoir:
    size: int
    seed: int
    # A max-heap by key (keys negated) of (key, line, row): the root is the worst kept row.
    _heap: list[tuple[int, int, Any]] = field(default_factory=list)

    def offer(self, line: int, row: Any) -> None:
        key = -sample_key(self.seed, line)
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, (key, line, row))
        elif key > self._heap[0][0]:
            heapq.heapreplace(self._heap, (key, line, row))

    def wants(self, line: int) -> bool:
        """Whether `offer(line, ...)` would keep the row (so callers can skip building it)."""
        return len(self._heap) < self.size or -sample_key(self.seed, line) > self._heap[0][0]

    def merge(self, other: "Reservoir") -> None:
        for key, line, row in other._heap:
            if len(self._heap) < self.size:
                heapq.heappush(self._heap, (key, line, row))
            elif key > self._heap[0][0]:
                heapq.heapreplace(self._heap, (key, line, row))

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"line": line, "row": row} for _, line, row in sorted(self._heap, key=lambda e: e[1])
        ]
