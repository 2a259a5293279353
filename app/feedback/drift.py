"""Drift of an adapter version, from its users' thumbs: the thumbs-down rate over recent
rolling windows against the rate in the version's first week (its baseline). A window is in
alert when both it and the baseline have at least `min_volume` ratings and its down-rate
exceeds the baseline's by more than `margin` (absolute, e.g. 0.10 = ten points). Recent
windows start no earlier than the end of the baseline week, so they never overlap it."""

from dataclasses import dataclass

DAY = 86_400
BASELINE_SECONDS = 7 * DAY
WINDOWS = (("24h", DAY), ("7d", 7 * DAY))


@dataclass(frozen=True)
class Counts:
    total: int
    down: int

    @property
    def down_rate(self) -> float | None:
        return self.down / self.total if self.total else None


@dataclass(frozen=True)
class WindowAssessment:
    name: str
    start: int
    end: int
    counts: Counts
    delta: float | None  # down-rate minus the baseline's
    status: str  # "ok" | "alert" | "insufficient_data"


def baseline_span(created_at: int) -> tuple[int, int]:
    return created_at, created_at + BASELINE_SECONDS


def window_span(now: int, seconds: int, baseline_end: int) -> tuple[int, int]:
    return max(now - seconds, baseline_end), now


def assess_window(
    name: str,
    span: tuple[int, int],
    counts: Counts,
    baseline: Counts,
    margin: float,
    min_volume: int,
) -> WindowAssessment:
    if baseline.total < min_volume or counts.total < min_volume:
        delta = None
        if counts.down_rate is not None and baseline.down_rate is not None:
            delta = counts.down_rate - baseline.down_rate
        return WindowAssessment(name, span[0], span[1], counts, delta, "insufficient_data")
    assert counts.down_rate is not None and baseline.down_rate is not None
    delta = counts.down_rate - baseline.down_rate
    status = "alert" if delta > margin else "ok"
    return WindowAssessment(name, span[0], span[1], counts, delta, status)


def overall(windows: list[WindowAssessment]) -> str:
    statuses = {w.status for w in windows}
    if "alert" in statuses:
        return "alert"
    if "ok" in statuses:
        return "ok"
    return "insufficient_data"
