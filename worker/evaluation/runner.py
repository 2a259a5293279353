"""One eval run: every valid row of the eval file goes through the serving gateway, is
scored by the metric registry (and the judge, when asked), and is stored; the run ends with
its aggregate metrics, latency percentiles and token usage.

The runner holds no database transaction while it waits on the gateway: it claims the run,
then stores rows a batch at a time (which is also when it notices a cancel). It calls the
gateway with a short-lived API key of the run's tenant, deleted when the run ends."""

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import delete

from app.auth.service import issue_key
from app.config import get_settings
from app.db import session_scope
from app.evals import repository as evals_repo
from app.inference.service import with_system_prompt
from app.kit.ids import now
from app.kit.storage import get_storage
from app.models import Adapter, ApiKey, EvalRun, EvalRunRow, File
from worker.datasets.formats import RowFormat
from worker.datasets.rows import check_row
from worker.datasets.validate import LineProblem, iter_lines, parse_line
from worker.evaluation.gateway import Answer, GatewayClient, GatewayError
from worker.evaluation.judge import Complete, agreement, http_judge, judge_row
from worker.evaluation.metrics import EvalRow, ScoredRow, aggregate, score_row

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowResult:
    line: int
    row: EvalRow
    output: str | None
    scores: dict[str, float]
    latency_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    error: str | None


def eval_rows(path: Path) -> Iterator[tuple[int, EvalRow]]:
    """The valid eval rows of a file, with their line numbers (invalid ones are skipped:
    a run is only created for a file whose validation passed)."""
    for number, raw in iter_lines(path):
        if not raw.strip():
            continue
        try:
            value = parse_line(raw)
        except LineProblem:
            continue
        if check_row(value, RowFormat.EVAL) is None:
            yield number, EvalRow.of(value)


def prompt_messages(run: EvalRun, row: EvalRow) -> list[dict[str, Any]]:
    """The few-shot examples, then the row's prompt; the run's system prompt goes first the
    way the gateway puts an alias' system prompt (merged into a row's own system message)."""
    messages = [*run.few_shot, *row.messages]
    return with_system_prompt(messages, run.system_prompt) if run.system_prompt else messages


def served_model(run: EvalRun, adapter_name: str | None) -> str:
    """The fixed version the run measures: the adapter's `ft:` name or the base model."""
    return adapter_name or run.base_model


def evaluate_row(
    client: GatewayClient,
    judge: Complete | None,
    run: EvalRun,
    model: str,
    line: int,
    row: EvalRow,
) -> RowResult:
    options = run.options
    try:
        answer: Answer | None = client.chat(
            model, prompt_messages(run, row), options["max_tokens"], options["seed"]
        )
        error = None
    except GatewayError as exc:
        answer, error = None, str(exc)[:2000]
    output = answer.text if answer else ""
    scores = score_row(output, row)
    if judge is not None and answer is not None:
        verdict = judge_row(judge, row, output, (options.get("judge") or {}).get("rubric"))
        if verdict is not None:
            scores["judge_pass"] = verdict
    return RowResult(
        line=line,
        row=row,
        output=answer.text if answer else None,
        scores=scores,
        latency_ms=answer.latency_ms if answer else None,
        prompt_tokens=answer.prompt_tokens if answer else 0,
        completion_tokens=answer.completion_tokens if answer else 0,
        error=error,
    )


def summarize(results: list[RowResult]) -> dict[str, Any]:
    """Run-level metrics: the aggregates, errors, judge agreement, latency and tokens."""
    answered = [r for r in results if r.error is None]
    summary = aggregate([ScoredRow(r.row, r.output or "", r.scores) for r in results])
    latencies = np.array([r.latency_ms for r in answered if r.latency_ms is not None])
    prompt = sum(r.prompt_tokens for r in answered)
    completion = sum(r.completion_tokens for r in answered)
    judged = [r for r in answered if "judge_pass" in r.scores]
    summary.update(
        {
            "errors": len(results) - len(answered),
            "latency_ms": {
                "p50": float(np.percentile(latencies, 50)) if len(latencies) else None,
                "p95": float(np.percentile(latencies, 95)) if len(latencies) else None,
                "mean": float(latencies.mean()) if len(latencies) else None,
            },
            "usage": {
                "requests": len(answered),
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "prompt_tokens_per_request": prompt / len(answered) if answered else None,
                "completion_tokens_per_request": completion / len(answered) if answered else None,
            },
            "judge": {
                "rows": len(judged),
                "pass_rate": (
                    sum(r.scores["judge_pass"] for r in judged) / len(judged) if judged else None
                ),
                "human_agreement": agreement(
                    [
                        (r.scores["judge_pass"] == 1.0, bool(r.row.checks["human_pass"]))
                        for r in judged
                        if "human_pass" in r.row.checks
                    ]
                ),
            }
            if judged
            else None,
        }
    )
    return summary


@dataclass
class Claimed:
    run: EvalRun
    path: Path
    model: str
    key_id: str
    raw_key: str


def _claim(run_id: str, resume: bool = False) -> Claimed | None:
    """Move the run to `running`. `resume`: the broker redelivered the task because the
    worker that had it died, so a `running` run is taken over and starts again from row 1."""
    with session_scope() as session:
        run = session.get(EvalRun, run_id)
        from_statuses = ("queued", "running") if resume else ("queued",)
        if run is None or not evals_repo.compare_and_set_status(
            session, run.id, from_statuses, "running", started_at=now(), rows_done=0
        ):
            return None
        session.execute(delete(EvalRunRow).where(EvalRunRow.run_id == run.id))
        file = session.get(File, run.eval_file_id)
        if file is None:
            evals_repo.compare_and_set_status(
                session,
                run.id,
                ("running",),
                "failed",
                finished_at=now(),
                error={"code": "file_not_found", "message": "The eval file no longer exists."},
            )
            return None
        adapter = session.get(Adapter, run.adapter_id) if run.adapter_id else None
        key, raw = issue_key(session, run.tenant_id)
        session.refresh(run)
        session.expunge(run)
        return Claimed(
            run=run,
            path=Path(get_storage().path(file.storage_key)),
            model=served_model(run, adapter.name if adapter else None),
            key_id=key.id,
            raw_key=raw,
        )


def _judge(run: EvalRun, client: GatewayClient) -> Complete | None:
    options = run.options.get("judge")
    if options is None:
        return None
    settings = get_settings()
    model = options.get("model") or settings.judge_model
    if settings.judge_base_url:
        return http_judge(settings.judge_base_url, model, settings.judge_api_key)
    return client.complete_judge(model)


def _store(run_id: str, results: list[RowResult]) -> bool:
    """Store a batch of rows; False when the run is no longer running (cancelled)."""
    with session_scope() as session:
        run = session.get(EvalRun, run_id)
        if run is None or run.status != "running":
            return False
        for r in results:
            session.merge(
                EvalRunRow(
                    run_id=run_id,
                    line=r.line,
                    tags=list(r.row.tags),
                    output=r.output,
                    scores=r.scores,
                    latency_ms=r.latency_ms,
                    prompt_tokens=r.prompt_tokens,
                    completion_tokens=r.completion_tokens,
                    error=r.error,
                )
            )
        run.rows_done += len(results)
        return True


def _finish(run_id: str, status: str, **fields: Any) -> None:
    with session_scope() as session:
        evals_repo.compare_and_set_status(
            session, run_id, ("running",), status, finished_at=now(), **fields
        )


def _drop_key(key_id: str) -> None:
    with session_scope() as session:
        key = session.get(ApiKey, key_id)
        if key is not None:
            session.delete(key)


def run_eval(
    run_id: str, on_done: Callable[[str], None] | None = None, resume: bool = False
) -> None:
    claimed = _claim(run_id, resume)
    if claimed is None:
        return
    settings = get_settings()
    client = GatewayClient(settings.gateway_url, claimed.raw_key)
    try:
        _execute(claimed, client, max(1, settings.eval_concurrency))
    except Exception as exc:
        log.exception("eval run %s failed", run_id)
        _finish(run_id, "failed", error={"code": "eval_failed", "message": str(exc)[:2000]})
    finally:
        client.close()
        _drop_key(claimed.key_id)
        if on_done is not None:
            on_done(run_id)


def _execute(claimed: Claimed, client: GatewayClient, concurrency: int) -> None:
    run = claimed.run
    rows = list(eval_rows(claimed.path))
    judge = _judge(run, client)
    results: list[RowResult] = []
    with ThreadPoolExecutor(concurrency) as pool:
        for start in range(0, len(rows), concurrency * 2):
            batch = rows[start : start + concurrency * 2]
            done = list(
                pool.map(
                    lambda lr: evaluate_row(client, judge, run, claimed.model, lr[0], lr[1]),
                    batch,
                )
            )
            if not _store(run.id, done):
                return  # cancelled: keep what was stored, stop calling the gateway
            results.extend(done)
    if results and all(r.error for r in results):
        raise RuntimeError(f"every request failed; the first error: {results[0].error}")
    metrics = orjson.loads(orjson.dumps(summarize(results), option=orjson.OPT_SERIALIZE_NUMPY))
    _finish(run.id, "succeeded", metrics=metrics)
