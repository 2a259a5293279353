"""Label balance for classification-like data: when the final assistant replies come from a
small set of short answers, their distribution, and a warning when one label dominates."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_LABELS = 20  # more distinct replies than this: not classification-like
MAX_LABEL_CHARS = 64
MIN_ROWS = 20
DOMINANT_SHARE = 0.8


@dataclass
class LabelCounter:
    counts: Counter[str] = field(default_factory=Counter)
    overflowed: bool = False  # a long reply or too many distinct ones was seen

    def add(self, reply: str) -> None:
        if self.overflowed:
            return
        label = reply.strip()
        if len(label) > MAX_LABEL_CHARS:
            self._overflow()
            return
        self.counts[label] += 1
        if len(self.counts) > MAX_LABELS:
            self._overflow()

    def merge(self, other: "LabelCounter") -> None:
        if other.overflowed:
            self._overflow()
        for label, count in other.counts.items():
            if self.overflowed:
                return
            self.counts[label] += count
            if len(self.counts) > MAX_LABELS:
                self._overflow()

    def _overflow(self) -> None:
        self.overflowed = True
        self.counts.clear()

    def report(self) -> dict[str, Any]:
        rows = sum(self.counts.values())
        if self.overflowed or rows < MIN_ROWS:
            return {"classification_like": False}
        labels = {label: count for label, count in self.counts.most_common()}
        top_label, top_count = next(iter(labels.items()))
        share = top_count / rows
        result: dict[str, Any] = {
            "classification_like": True,
            "labels": labels,
            "top_label": top_label,
            "top_share": round(share, 4),
        }
        if share > DOMINANT_SHARE:
            result["warning"] = (
                f"label {top_label!r} is {share:.0%} of the rows; the model may learn to always "
                "answer it. Balance the classes or add examples of the others."
            )
        return result
