"""The decision report of a fine-tune: the baseline's and the fine-tune's runs on the same
eval files, compared row by row. Metric deltas come with paired bootstrap 95% intervals
(numpy, seeded); task, regression-suite and safety results side by side; latency and tokens
per request; and the verdict (verdict.py). Written by whichever of its runs finishes last."""

from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import select, update

from app.config import get_settings
from app.db import session_scope
from app.kit.ids import now
from app.models import DecisionReport, EvalRun, EvalRunRow
from worker.evaluation.verdict import Delta, Policy, decide

GROUPS = ("task", "regression", "safety")
# The task metric the verdict rests on, when the report does not name one: the most specific
# metric both runs have.
PRIMARY_ORDER = (
    "json_schema_valid",
    "field_accuracy",
    "label_accuracy",
    "json_valid",
    "judge_pass",
    "exact_match",
    "normalized_match",
    "refusal_correct",
    "fuzzy_similarity",
)
BOOTSTRAP_SAMPLES = 2000

Scores = dict[Any, dict[str, float]]  # row key (file, line) -> scores


def paired_delta(
    metric: str, baseline: Scores, fine_tune: Scores, seed: int, samples: int = BOOTSTRAP_SAMPLES
) -> Delta | None:
    """Mean difference over the rows both runs scored with `metric`, and the percentile
    bootstrap interval of that mean (rows resampled with replacement, pairs kept)."""
    keys = sorted(
        k
        for k in baseline.keys() & fine_tune.keys()
        if metric in baseline[k] and metric in fine_tune[k]
    )
    if not keys:
        return None
    b = np.array([baseline[k][metric] for k in keys])
    f = np.array([fine_tune[k][metric] for k in keys])
    d = f - b
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(samples, len(d)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Delta(
        metric=metric,
        baseline=float(b.mean()),
        fine_tune=float(f.mean()),
        delta=float(d.mean()),
        ci_low=float(low),
        ci_high=float(high),
        rows=len(keys),
    )


def group_of(tags: Iterable[str]) -> set[str]:
    tags = set(tags)
    return (tags & set(GROUPS)) or {"task"}


def compare(
    baseline: dict[Any, tuple[list[str], dict[str, float]]],
    fine_tune: dict[Any, tuple[list[str], dict[str, float]]],
    seed: int,
) -> dict[str, dict[str, Delta]]:
    """Per group, per metric: the paired delta."""
    out: dict[str, dict[str, Delta]] = {}
    for group in GROUPS:
        b = {k: s for k, (tags, s) in baseline.items() if group in group_of(tags)}
        f = {k: s for k, (tags, s) in fine_tune.items() if group in group_of(tags)}
        metrics = sorted({m for s in b.values() for m in s} & {m for s in f.values() for m in s})
        deltas = {m: paired_delta(m, b, f, seed) for m in metrics}
        out[group] = {m: d for m, d in deltas.items() if d is not None}
    return out


def pick_primary(task: dict[str, Delta], wanted: str | None) -> Delta | None:
    if wanted:
        return task.get(wanted)
    return next((task[m] for m in PRIMARY_ORDER if m in task), None)


def cost(
    baseline_metrics: list[dict[str, Any]], fine_tune_metrics: list[dict[str, Any]]
) -> dict[str, Any]:
    """Tokens and latency per request of each side, summed over the eval files."""

    def side(metrics: list[dict[str, Any]]) -> dict[str, Any]:
        requests = sum(m["usage"]["requests"] for m in metrics)
        tokens = sum(m["usage"]["prompt_tokens"] + m["usage"]["completion_tokens"] for m in metrics)
        p50 = [m["latency_ms"]["p50"] for m in metrics if m["latency_ms"]["p50"] is not None]
        p95 = [m["latency_ms"]["p95"] for m in metrics if m["latency_ms"]["p95"] is not None]
        return {
            "requests": requests,
            "tokens_per_request": tokens / requests if requests else None,
            "prompt_tokens_per_request": (
                sum(m["usage"]["prompt_tokens"] for m in metrics) / requests if requests else None
            ),
            "completion_tokens_per_request": (
                sum(m["usage"]["completion_tokens"] for m in metrics) / requests
                if requests
                else None
            ),
            "latency_ms_p50": max(p50) if p50 else None,
            "latency_ms_p95": max(p95) if p95 else None,
        }

    b, f = side(baseline_metrics), side(fine_tune_metrics)
    ratio = (
        f["tokens_per_request"] / b["tokens_per_request"]
        if b["tokens_per_request"] and f["tokens_per_request"] is not None
        else None
    )
    return {"baseline": b, "fine_tune": f, "token_cost_ratio": ratio}


def build_report(
    baseline: dict[Any, tuple[list[str], dict[str, float]]],
    fine_tune: dict[Any, tuple[list[str], dict[str, float]]],
    baseline_metrics: list[dict[str, Any]],
    fine_tune_metrics: list[dict[str, Any]],
    seed: int,
    primary_metric: str | None,
    policy: Policy,
) -> dict[str, Any]:
    groups = compare(baseline, fine_tune, seed)
    primary = pick_primary(groups["task"], primary_metric)
    costs = cost(baseline_metrics, fine_tune_metrics)
    guarded = {
        "regression suite": list(groups["regression"].values()),
        "safety": list(groups["safety"].values()),
    }
    verdict = decide(primary, guarded, costs["token_cost_ratio"], policy)
    return {
        "verdict": {"decision": verdict.decision, "message": verdict.message},
        "primary_metric": primary.metric if primary else primary_metric,
        "primary": primary.to_dict() if primary else None,
        "groups": {g: {m: d.to_dict() for m, d in deltas.items()} for g, deltas in groups.items()},
        "refusal": {
            "baseline": [m.get("refusal") for m in baseline_metrics],
            "fine_tune": [m.get("refusal") for m in fine_tune_metrics],
        },
        "cost": costs,
        "policy": {
            "max_regression": policy.max_regression,
            "cost_ratio_limit": policy.cost_ratio_limit,
            "bootstrap_samples": BOOTSTRAP_SAMPLES,
            "seed": seed,
        },
    }


def _rows(session: Any, run: EvalRun) -> dict[Any, tuple[list[str], dict[str, float]]]:
    rows = session.scalars(select(EvalRunRow).where(EvalRunRow.run_id == run.id))
    return {(run.eval_file_id, r.line): (r.tags, r.scores) for r in rows}


def finish_report_of(run_id: str) -> None:
    """Called when an eval run ends: write its decision report if every run has ended."""
    with session_scope() as session:
        run = session.get(EvalRun, run_id)
        if run is None or run.decision_report_id is None:
            return
        report = session.get(DecisionReport, run.decision_report_id)
        if report is None or report.status != "running":
            return
        runs = list(session.scalars(select(EvalRun).where(EvalRun.decision_report_id == report.id)))
        if any(r.status in ("queued", "running") for r in runs):
            return
        unfinished = [r for r in runs if r.status != "succeeded"]
        values: dict[str, Any]
        if unfinished:
            values = {
                "status": "failed",
                "error": {
                    "code": "eval_run_failed",
                    "message": f"eval run {unfinished[0].id} {unfinished[0].status}",
                },
            }
        else:
            baseline = [r for r in runs if r.adapter_id is None]
            fine_tune = [r for r in runs if r.adapter_id is not None]
            b_rows: dict[Any, tuple[list[str], dict[str, float]]] = {}
            f_rows: dict[Any, tuple[list[str], dict[str, float]]] = {}
            for r in baseline:
                b_rows.update(_rows(session, r))
            for r in fine_tune:
                f_rows.update(_rows(session, r))
            body = build_report(
                b_rows,
                f_rows,
                [r.metrics or {} for r in baseline],
                [r.metrics or {} for r in fine_tune],
                seed=int(report.options.get("seed", 0)),
                primary_metric=report.options.get("primary_metric"),
                policy=Policy(max_regression=get_settings().promotion_max_regression),
            )
            values = {"status": "succeeded", "report": body}
        session.execute(
            update(DecisionReport)
            .where(DecisionReport.id == report.id, DecisionReport.status == "running")
            .values(finished_at=now(), **values)
            .execution_options(synchronize_session=False)
        )
