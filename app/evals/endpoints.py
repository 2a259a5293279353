from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.dependencies import CurrentTenant, SessionDep
from app.evals import service
from app.evals.schemas import (
    DecisionReportCreate,
    DecisionReportPublic,
    EvalRunCreate,
    EvalRunPublic,
    EvalRunRowPage,
)
from app.kit.pagination import ListPage

router = APIRouter(tags=["evals"])


@router.post("/v1/eval_runs", response_model=EvalRunPublic)
def create_eval_run(
    tenant: CurrentTenant, session: SessionDep, body: EvalRunCreate
) -> EvalRunPublic:
    return EvalRunPublic.of(service.create_run(session, tenant, body))


@router.get("/v1/eval_runs", response_model=ListPage[EvalRunPublic])
def list_eval_runs(
    tenant: CurrentTenant,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    eval_file: str | None = None,
) -> ListPage[EvalRunPublic]:
    runs, has_more = service.list_runs(session, tenant, after, limit, eval_file)
    data = [EvalRunPublic.of(r) for r in runs]
    return ListPage(
        data=data,
        has_more=has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )


@router.get("/v1/eval_runs/{run_id}", response_model=EvalRunPublic)
def retrieve_eval_run(tenant: CurrentTenant, session: SessionDep, run_id: str) -> EvalRunPublic:
    return EvalRunPublic.of(service.get_run(session, tenant, run_id))


@router.get("/v1/eval_runs/{run_id}/rows", response_model=EvalRunRowPage)
def list_eval_run_rows(
    tenant: CurrentTenant,
    session: SessionDep,
    run_id: str,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> EvalRunRowPage:
    return service.run_rows(session, tenant, run_id, after, limit)


@router.post("/v1/eval_runs/{run_id}/cancel", response_model=EvalRunPublic)
def cancel_eval_run(tenant: CurrentTenant, session: SessionDep, run_id: str) -> EvalRunPublic:
    return EvalRunPublic.of(service.cancel_run(session, tenant, run_id))


@router.post("/v1/fine_tuning/jobs/{job_id}/decision_report", response_model=DecisionReportPublic)
def create_decision_report(
    tenant: CurrentTenant, session: SessionDep, job_id: str, body: DecisionReportCreate
) -> DecisionReportPublic:
    return service.create_report(session, tenant, job_id, body)


@router.get("/v1/fine_tuning/jobs/{job_id}/decision_report", response_model=DecisionReportPublic)
def retrieve_decision_report(
    tenant: CurrentTenant, session: SessionDep, job_id: str
) -> DecisionReportPublic:
    return service.get_report(session, tenant, job_id)
