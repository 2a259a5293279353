from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.kit.pagination import paginate
from app.kit.tenancy import scoped
from app.models import DecisionReport, EvalRun, EvalRunRow

TERMINAL = ("succeeded", "failed", "cancelled")


def add(session: Session, row: Any) -> None:
    session.add(row)
    session.flush()


def get(session: Session, tenant_id: str, run_id: str) -> EvalRun | None:
    return session.scalars(scoped(EvalRun, tenant_id).where(EvalRun.id == run_id)).first()


def page(
    session: Session, tenant_id: str, after: str | None, limit: int, eval_file: str | None
) -> tuple[list[EvalRun], bool]:
    stmt = scoped(EvalRun, tenant_id)
    if eval_file:
        stmt = stmt.where(EvalRun.eval_file_id == eval_file)
    return paginate(session, stmt, EvalRun.id, after, limit)


def rows(session: Session, run_id: str, after_line: int, limit: int) -> list[EvalRunRow]:
    """Rows of a run the caller has already found through `get` (tenant-scoped)."""
    stmt = (
        select(EvalRunRow)
        .where(EvalRunRow.run_id == run_id, EvalRunRow.line > after_line)
        .order_by(EvalRunRow.line)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def compare_and_set_status(
    session: Session, run_id: str, from_statuses: Iterable[str], to_status: str, **fields: Any
) -> bool:
    result = session.execute(
        update(EvalRun)
        .where(EvalRun.id == run_id, EvalRun.status.in_(list(from_statuses)))
        .values(status=to_status, **fields)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def succeeded_runs(
    session: Session,
    tenant_id: str,
    eval_file_id: str | None,
    adapter_id: str | None,
    base_model: str,
) -> list[EvalRun]:
    """Finished runs of one adapter version (or of the bare base model), newest first."""
    stmt = scoped(EvalRun, tenant_id).where(
        EvalRun.status == "succeeded", EvalRun.base_model == base_model
    )
    if eval_file_id is not None:
        stmt = stmt.where(EvalRun.eval_file_id == eval_file_id)
    stmt = stmt.where(
        EvalRun.adapter_id == adapter_id if adapter_id else EvalRun.adapter_id.is_(None)
    )
    return list(session.scalars(stmt.order_by(EvalRun.id.desc()).limit(200)))


def runs_of_report(session: Session, tenant_id: str, report_id: str) -> list[EvalRun]:
    stmt = scoped(EvalRun, tenant_id).where(EvalRun.decision_report_id == report_id)
    return list(session.scalars(stmt.order_by(EvalRun.id)))


def latest_report(session: Session, tenant_id: str, job_id: str) -> DecisionReport | None:
    stmt = scoped(DecisionReport, tenant_id).where(DecisionReport.job_id == job_id)
    return session.scalars(stmt.order_by(DecisionReport.id.desc())).first()
