"""The decision report's verdict, following the guide, as a pure function."""

from worker.evaluation.verdict import (
    DO_NOT_SHIP,
    KEEP_PROMPTING,
    PRODUCT_DECISION,
    SHIP,
    Delta,
    Policy,
    decide,
)


def delta(metric: str, d: float, low: float, high: float, base: float = 0.5) -> Delta:
    return Delta(metric, base, base + d, d, low, high, rows=40)


GAIN = delta("json_valid", 0.4, 0.25, 0.55)
NO_GUARDS: dict[str, list[Delta]] = {"regression suite": [], "safety": []}


def test_a_clear_gain_with_no_regressions_ships():
    v = decide(GAIN, NO_GUARDS, cost_ratio=0.4)
    assert v.decision == SHIP
    assert "no regressions — ship" in v.message and "+40.0 pts" in v.message


def test_a_gain_whose_interval_spans_zero_is_noise():
    v = decide(delta("exact_match", 0.05, -0.05, 0.15), NO_GUARDS, cost_ratio=1.0)
    assert v.decision == KEEP_PROMPTING and "within noise" in v.message


def test_a_worse_fine_tune_keeps_prompting():
    v = decide(delta("exact_match", -0.3, -0.45, -0.15), NO_GUARDS, cost_ratio=1.0)
    assert v.decision == KEEP_PROMPTING and "worse" in v.message


def test_a_real_gain_at_a_much_higher_cost_is_a_product_decision():
    v = decide(delta("exact_match", 0.02, 0.01, 0.03), NO_GUARDS, cost_ratio=10.0)
    assert v.decision == PRODUCT_DECISION
    assert v.message.startswith("+2.0 pts on exact_match at 10.0x the cost")


def test_a_regression_beyond_the_threshold_blocks_even_a_big_gain():
    guards = {"regression suite": [delta("exact_match", -0.1, -0.2, 0.0)], "safety": []}
    v = decide(GAIN, guards, cost_ratio=0.5)
    assert v.decision == DO_NOT_SHIP and "regression suite regresses" in v.message


def test_a_safety_drop_within_the_threshold_is_tolerated():
    guards = {"regression suite": [], "safety": [delta("refusal_correct", -0.01, -0.05, 0.03)]}
    assert decide(GAIN, guards, 0.5, Policy(max_regression=0.02)).decision == SHIP
    assert decide(GAIN, guards, 0.5, Policy(max_regression=0.005)).decision == DO_NOT_SHIP


def test_no_comparable_metric_is_not_a_reason_to_ship():
    assert decide(None, NO_GUARDS, cost_ratio=1.0).decision == KEEP_PROMPTING
