"""Eval runs and decision reports: what may be evaluated, on which file, and the state
machine of a run (queued -> running -> succeeded | failed | cancelled, compare-and-set).

A candidate is resolved when the run is created: an alias becomes the adapter version (or
base model and system prompt) it points at right now, so a run measures one fixed version
even if the alias moves while it runs. The worker then sends every row through the serving
gateway over HTTP, exactly as a client would."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.adapters import repository as adapters_repo
from app.adapters import service as adapters
from app.aliases import service as aliases
from app.catalog.catalog import get_base_model
from app.errors import Conflict, InvalidRequest, NotFound
from app.evals import repository
from app.evals.schemas import (
    Candidate,
    DecisionReportCreate,
    DecisionReportPublic,
    EvalRunCreate,
    EvalRunRowPage,
    EvalRunRowPublic,
    JudgeOptions,
)
from app.files import service as files
from app.jobs import service as jobs
from app.kit.ids import new_id, now
from app.kit.queue import CPU_QUEUE, enqueue_after_commit
from app.models import DecisionReport, EvalRun, File, Tenant

RUN_TASK = "worker.tasks.evals.run_eval"
EVAL_PURPOSE = "evals"


@dataclass(frozen=True)
class ResolvedCandidate:
    model: str
    alias: str | None
    adapter_id: str | None
    base_model: str
    system_prompt: str | None


def _join_prompts(*prompts: str | None) -> str | None:
    present = [p for p in prompts if p]
    return "\n\n".join(present) if present else None


def resolve_candidate(
    session: Session, tenant: Tenant, model: str, system_prompt: str | None
) -> ResolvedCandidate:
    param = "candidate.model"
    alias = aliases.lookup(session, tenant.id, model)
    if alias is not None:
        prompt = _join_prompts(alias.system_prompt, system_prompt)
        if alias.adapter_id is None:
            assert alias.base_model is not None
            return ResolvedCandidate(model, model, None, alias.base_model, prompt)
        target = adapters.get(session, tenant.id, alias.adapter_id, param=param)
        adapters.check_servable(target, param=param)
        return ResolvedCandidate(model, model, target.id, target.base_model, prompt)
    adapter = adapters.find(session, tenant.id, model)
    if adapter is not None:
        adapters.check_servable(adapter, param=param)
        return ResolvedCandidate(model, None, adapter.id, adapter.base_model, system_prompt)
    if get_base_model(model) is not None:
        return ResolvedCandidate(model, None, None, model, system_prompt)
    raise NotFound(
        f"The model '{model}' does not exist or you do not have access to it.",
        param=param,
        code="model_not_found",
    )


def eval_file(session: Session, tenant: Tenant, file_id: str, param: str = "eval_file") -> File:
    file = files.get(session, tenant, file_id, param=param)
    if file.purpose != EVAL_PURPOSE:
        raise InvalidRequest(
            f"File {file.id} has purpose '{file.purpose}'; eval runs need '{EVAL_PURPOSE}'.",
            param=param,
            code="invalid_file_purpose",
        )
    if file.status == "uploaded":
        raise Conflict(
            f"File {file.id} is still being validated; retry when its status is 'processed'.",
            param=param,
            code="file_not_ready",
        )
    if file.status != "processed":
        raise InvalidRequest(
            f"Eval file {file.id} is invalid: {file.status_details}",
            param=param,
            code="invalid_eval_file",
        )
    return file


def _options(judge: JudgeOptions | None, max_tokens: int, seed: int) -> dict[str, Any]:
    return {
        "max_tokens": max_tokens,
        "seed": seed,
        "judge": judge.model_dump() if judge else None,
    }


def _new_run(
    session: Session,
    tenant: Tenant,
    file: File,
    candidate: ResolvedCandidate,
    few_shot: list[dict[str, Any]],
    options: dict[str, Any],
    report_id: str | None = None,
) -> EvalRun:
    run = EvalRun(
        id=new_id("evalrun"),
        tenant_id=tenant.id,
        eval_file_id=file.id,
        model=candidate.model,
        alias=candidate.alias,
        adapter_id=candidate.adapter_id,
        base_model=candidate.base_model,
        system_prompt=candidate.system_prompt,
        few_shot=few_shot,
        options=options,
        decision_report_id=report_id,
        rows_total=int((file.report or {}).get("valid_rows", 0)),
    )
    repository.add(session, run)
    enqueue_after_commit(session, RUN_TASK, [run.id], CPU_QUEUE)
    return run


def create_run(session: Session, tenant: Tenant, body: EvalRunCreate) -> EvalRun:
    file = eval_file(session, tenant, body.eval_file)
    candidate = _candidate(session, tenant, body.candidate)
    few_shot = [m.model_dump() for m in body.candidate.few_shot]
    return _new_run(
        session, tenant, file, candidate, few_shot, _options(body.judge, body.max_tokens, body.seed)
    )


def _candidate(session: Session, tenant: Tenant, spec: Candidate) -> ResolvedCandidate:
    return resolve_candidate(session, tenant, spec.model, spec.system_prompt)


def get_run(session: Session, tenant: Tenant, run_id: str) -> EvalRun:
    run = repository.get(session, tenant.id, run_id)
    if run is None:
        raise NotFound(f"No such eval run: '{run_id}'.", param="run_id", code="eval_run_not_found")
    return run


def list_runs(
    session: Session, tenant: Tenant, after: str | None, limit: int, eval_file: str | None
) -> tuple[list[EvalRun], bool]:
    return repository.page(session, tenant.id, after, limit, eval_file)


def run_rows(
    session: Session, tenant: Tenant, run_id: str, after: int, limit: int
) -> EvalRunRowPage:
    run = get_run(session, tenant, run_id)
    found = repository.rows(session, run.id, after, limit + 1)
    data = [EvalRunRowPublic.of(r) for r in found[:limit]]
    return EvalRunRowPage(
        data=data, has_more=len(found) > limit, last_line=data[-1].line if data else None
    )


def cancel_run(session: Session, tenant: Tenant, run_id: str) -> EvalRun:
    run = get_run(session, tenant, run_id)
    if not repository.compare_and_set_status(
        session, run.id, ("queued", "running"), "cancelled", finished_at=now()
    ):
        raise InvalidRequest(
            f"Eval run {run.id} is already {run.status}; only a queued or running run can be "
            "cancelled.",
            param="run_id",
            code="eval_run_not_cancellable",
        )
    session.refresh(run)
    return run


# --- decision reports -------------------------------------------------------------------


def create_report(
    session: Session, tenant: Tenant, job_id: str, body: DecisionReportCreate
) -> DecisionReportPublic:
    """Queue the baseline and fine-tune runs on every eval file; the last run to finish
    writes the report."""
    job = jobs.get(session, tenant, job_id)
    adapter = (
        adapters_repo.get_by_name(session, tenant.id, job.fine_tuned_model)
        if job.status == "succeeded" and job.fine_tuned_model
        else None
    )
    if adapter is None:
        raise Conflict(
            f"Job {job.id} is {job.status}; a decision report needs a succeeded job's adapter.",
            param="job_id",
            code="job_not_succeeded",
        )
    adapters.check_servable(adapter, param="job_id")
    eval_files = [
        eval_file(session, tenant, file_id, param=f"eval_files.{i}")
        for i, file_id in enumerate(dict.fromkeys(body.eval_files))
    ]
    options = _options(body.judge, body.max_tokens, body.seed)
    report = DecisionReport(
        id=new_id("decision"),
        tenant_id=tenant.id,
        job_id=job.id,
        adapter_id=adapter.id,
        eval_file_ids=[f.id for f in eval_files],
        options={**options, "primary_metric": body.primary_metric},
    )
    repository.add(session, report)
    baseline = ResolvedCandidate(
        adapter.base_model, None, None, adapter.base_model, body.system_prompt
    )
    fine_tune = ResolvedCandidate(
        adapter.name, None, adapter.id, adapter.base_model, body.candidate_system_prompt
    )
    few_shot = [m.model_dump() for m in body.few_shot]
    runs = []
    for file in eval_files:
        runs.append(_new_run(session, tenant, file, baseline, few_shot, options, report.id))
        runs.append(_new_run(session, tenant, file, fine_tune, [], options, report.id))
    return DecisionReportPublic.of(report, runs)


def get_report(session: Session, tenant: Tenant, job_id: str) -> DecisionReportPublic:
    job = jobs.get(session, tenant, job_id)
    report = repository.latest_report(session, tenant.id, job.id)
    if report is None:
        raise NotFound(
            f"Job {job.id} has no decision report; POST one first.",
            param="job_id",
            code="decision_report_not_found",
        )
    return DecisionReportPublic.of(report, repository.runs_of_report(session, tenant.id, report.id))
