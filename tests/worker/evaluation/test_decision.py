"""Paired bootstrap deltas and the report built from two runs' row scores."""

import pytest

from worker.evaluation.decision import build_report, compare, cost, paired_delta
from worker.evaluation.verdict import Policy

USAGE = {"requests": 10, "prompt_tokens": 1000, "completion_tokens": 200}


def run_metrics(prompt_tokens: int, p50: float) -> dict:
    usage = {**USAGE, "prompt_tokens": prompt_tokens}
    return {"usage": usage, "latency_ms": {"p50": p50, "p95": p50 * 2}, "refusal": {}}


def test_paired_delta_is_seeded_and_brackets_the_mean():
    base = {i: {"m": float(i % 2)} for i in range(40)}
    fine = {i: {"m": 1.0} for i in range(40)}
    d = paired_delta("m", base, fine, seed=7)
    assert d is not None
    assert d.delta == pytest.approx(0.5) and d.rows == 40
    assert 0 < d.ci_low < 0.5 < d.ci_high <= 1.0
    assert paired_delta("m", base, fine, seed=7) == d  # same seed, same interval
    assert paired_delta("other", base, fine, seed=7) is None


def test_identical_runs_have_a_zero_width_interval_at_zero():
    scores = {i: {"m": float(i % 3 == 0)} for i in range(30)}
    d = paired_delta("m", scores, scores, seed=1)
    assert d is not None and d.delta == 0 and d.ci_low == 0 and d.ci_high == 0


def test_rows_are_grouped_by_tag_and_untagged_rows_are_task_rows():
    base = {1: ([], {"json_valid": 0.0}), 2: (["regression"], {"exact_match": 1.0})}
    fine = {1: ([], {"json_valid": 1.0}), 2: (["regression"], {"exact_match": 0.0})}
    groups = compare(base, fine, seed=0)
    assert set(groups["task"]) == {"json_valid"}
    assert groups["regression"]["exact_match"].delta == -1.0
    assert groups["safety"] == {}


def test_cost_compares_tokens_per_request():
    c = cost([run_metrics(1000, 100.0)], [run_metrics(100, 80.0)])
    assert c["baseline"]["tokens_per_request"] == 120
    assert c["fine_tune"]["tokens_per_request"] == 30
    assert c["token_cost_ratio"] == 0.25


def test_report_ships_a_json_fix_and_blocks_a_regression():
    base = {(f, i): (["task"], {"json_valid": 0.0}) for f in "a" for i in range(20)}
    fine = {(f, i): (["task"], {"json_valid": 1.0}) for f in "a" for i in range(20)}
    report = build_report(
        base, fine, [run_metrics(1000, 1)], [run_metrics(100, 1)], 0, None, Policy()
    )
    assert report["verdict"]["decision"] == "ship"
    assert report["primary_metric"] == "json_valid"
    assert report["primary"]["delta"] == 1.0
    regressed = {
        **fine,
        ("a", 99): (["regression"], {"exact_match": 0.0}),
    }
    kept = {**base, ("a", 99): (["regression"], {"exact_match": 1.0})}
    report = build_report(
        kept, regressed, [run_metrics(1000, 1)], [run_metrics(100, 1)], 0, None, Policy()
    )
    assert report["verdict"]["decision"] == "do_not_ship"
    assert report["groups"]["regression"]["exact_match"]["delta"] == -1.0
