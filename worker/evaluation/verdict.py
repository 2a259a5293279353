"""The plain-language verdict of a decision report, following the guide: training loss going
down does not mean users are happier, so a fine-tune ships only when it beats base+prompt
beyond noise, breaks nothing on the regression suite and the safety probes, and does not cost
much more per request. Pure: numbers in, a decision and a sentence out."""

from dataclasses import dataclass
from typing import Any

SHIP = "ship"
KEEP_PROMPTING = "keep_prompting"
PRODUCT_DECISION = "product_decision"
DO_NOT_SHIP = "do_not_ship"


@dataclass(frozen=True)
class Delta:
    """Fine-tune minus baseline for one metric, with a bootstrap 95% interval."""

    metric: str
    baseline: float
    fine_tune: float
    delta: float
    ci_low: float
    ci_high: float
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "fine_tune": self.fine_tune,
            "delta": self.delta,
            "ci95": [self.ci_low, self.ci_high],
            "rows": self.rows,
        }


@dataclass(frozen=True)
class Policy:
    max_regression: float = 0.02  # a guarded metric may drop at most this much (0-1 scale)
    cost_ratio_limit: float = 2.0  # beyond this many times the baseline's cost: a product call


@dataclass(frozen=True)
class Verdict:
    decision: str
    message: str


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} pts"


def decide(
    primary: Delta | None,
    guarded: dict[str, list[Delta]],
    cost_ratio: float | None,
    policy: Policy = Policy(),
) -> Verdict:
    """`guarded`: the regression-suite and safety deltas, by group name."""
    for group, deltas in guarded.items():
        worst = min(deltas, key=lambda d: d.delta, default=None)
        if worst is not None and worst.delta < -policy.max_regression:
            return Verdict(
                DO_NOT_SHIP,
                f"{group} regresses: {worst.metric} {_pct(worst.delta)} "
                f"({worst.baseline:.0%} → {worst.fine_tune:.0%}) — do not ship; fix the "
                "training data and retrain.",
            )
    if primary is None:
        return Verdict(
            KEEP_PROMPTING,
            "no task metric applies to both runs — nothing shows the fine-tune helps; keep "
            "prompting.",
        )
    interval = f"95% CI {_pct(primary.ci_low)} to {_pct(primary.ci_high)}"
    if primary.ci_high < 0:
        return Verdict(
            KEEP_PROMPTING,
            f"the fine-tune is worse on {primary.metric} ({_pct(primary.delta)}, {interval}) "
            "— keep prompting.",
        )
    if primary.ci_low <= 0:
        return Verdict(
            KEEP_PROMPTING,
            f"gain on {primary.metric} is within noise ({_pct(primary.delta)}, {interval}) — "
            "keep prompting.",
        )
    if cost_ratio is not None and cost_ratio > policy.cost_ratio_limit:
        return Verdict(
            PRODUCT_DECISION,
            f"{_pct(primary.delta)} on {primary.metric} at {cost_ratio:.1f}x the cost per "
            "request — a product decision.",
        )
    cost = f" at {cost_ratio:.2f}x the cost per request" if cost_ratio is not None else ""
    return Verdict(
        SHIP,
        f"behaviour fixed: {primary.metric} {_pct(primary.delta)} ({interval}){cost}, no "
        "regressions — ship.",
    )
