"""The promotion gate: a candidate may replace an alias' current version only if, on the same
eval file, it does not regress beyond a threshold on the regression suite (rows tagged
`regression`) or the safety probes (`safety`, plus the refusal and answer rates)."""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.evals import repository
from app.models import EvalRun

GUARDED_TAGS = ("regression", "safety")
REFUSAL_RATES = ("refusal_rate", "answer_rate")


@dataclass(frozen=True)
class Version:
    """What an alias serves: an adapter version, or a base model; plus the system prompt."""

    adapter_id: str | None
    base_model: str
    system_prompt: str | None


@dataclass(frozen=True)
class Regression:
    group: str
    metric: str
    current: float
    candidate: float

    @property
    def delta(self) -> float:
        return self.candidate - self.current

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "metric": self.metric,
            "current": self.current,
            "candidate": self.candidate,
            "delta": self.delta,
        }


@dataclass
class GateResult:
    passed: bool
    code: str | None
    message: str
    threshold: float
    eval_file: str | None = None
    candidate_run: str | None = None
    current_run: str | None = None
    compared: list[str] = field(default_factory=list)
    regressions: list[Regression] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "code": self.code,
            "message": self.message,
            "threshold": self.threshold,
            "eval_file": self.eval_file,
            "candidate_run": self.candidate_run,
            "current_run": self.current_run,
            "compared": self.compared,
            "regressions": [r.to_dict() for r in self.regressions],
        }


def guarded_means(metrics: dict[str, Any]) -> dict[tuple[str, str], float]:
    """The guarded numbers of a run: per guarded tag, every metric mean; and the refusal
    split of the safety probes."""
    out: dict[tuple[str, str], float] = {}
    for tag in GUARDED_TAGS:
        for metric, value in (metrics.get("by_tag") or {}).get(tag, {}).items():
            out[(tag, metric)] = float(value["mean"])
    refusal = metrics.get("refusal") or {}
    for rate in REFUSAL_RATES:
        if refusal.get(rate) is not None:
            out[("safety", rate)] = float(refusal[rate])
    return out


def find_regressions(
    current: dict[str, Any], candidate: dict[str, Any], threshold: float
) -> tuple[list[str], list[Regression]]:
    """(what was compared, what dropped by more than `threshold`). Pure."""
    cur, cand = guarded_means(current), guarded_means(candidate)
    keys = sorted(cur.keys() & cand.keys())
    dropped = [
        Regression(group, metric, cur[(group, metric)], cand[(group, metric)])
        for group, metric in keys
        if cand[(group, metric)] - cur[(group, metric)] < -threshold
    ]
    return [f"{group}.{metric}" for group, metric in keys], dropped


def _runs_of(
    session: Session, tenant_id: str, version: Version, eval_file: str | None
) -> list[EvalRun]:
    runs = repository.succeeded_runs(
        session, tenant_id, eval_file, version.adapter_id, version.base_model
    )
    return [r for r in runs if r.system_prompt == version.system_prompt and not r.few_shot]


def check(
    session: Session,
    tenant_id: str,
    current: Version,
    candidate: Version,
    eval_file: str | None,
    threshold: float,
) -> GateResult:
    candidate_runs = _runs_of(session, tenant_id, candidate, eval_file)
    current_runs = _runs_of(session, tenant_id, current, eval_file)
    current_by_file: dict[str, EvalRun] = {}
    for run in current_runs:
        current_by_file.setdefault(run.eval_file_id, run)
    pair = next(
        (
            (c, current_by_file[c.eval_file_id])
            for c in candidate_runs
            if c.eval_file_id in current_by_file
        ),
        None,
    )
    if pair is None:
        where = f"eval file {eval_file}" if eval_file else "one eval file"
        return GateResult(
            False,
            "evaluation_required",
            f"No finished eval runs of both the candidate and the alias' current version on "
            f"{where} (without few-shot examples, with the alias' system prompt); run "
            "POST /v1/eval_runs for both first.",
            threshold,
        )
    cand_run, cur_run = pair
    compared, dropped = find_regressions(cur_run.metrics or {}, cand_run.metrics or {}, threshold)
    result = GateResult(
        passed=bool(compared) and not dropped,
        code=None,
        message="",
        threshold=threshold,
        eval_file=cand_run.eval_file_id,
        candidate_run=cand_run.id,
        current_run=cur_run.id,
        compared=compared,
        regressions=dropped,
    )
    if not compared:
        result.code = "evaluation_required"
        result.message = (
            f"Eval file {cand_run.eval_file_id} has no regression-suite or safety rows to gate "
            "the promotion on; tag rows 'regression' or 'safety'."
        )
    elif dropped:
        worst = min(dropped, key=lambda r: r.delta)
        result.code = "promotion_blocked"
        result.message = (
            f"The candidate regresses {len(dropped)} guarded metric(s) by more than "
            f"{threshold:.3f} versus the alias' current version; worst: {worst.group} "
            f"{worst.metric} {worst.current:.3f} -> {worst.candidate:.3f}. Promote with "
            "force and a reason to override."
        )
    else:
        result.message = f"No guarded metric dropped by more than {threshold:.3f}."
    return result
