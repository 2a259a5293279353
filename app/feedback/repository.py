from collections.abc import Sequence

from sqlalchemy import case, func
from sqlalchemy.orm import Session

from app.feedback.drift import Counts
from app.inference.schemas import ServedRequest
from app.kit.tenancy import scoped
from app.kit.upsert import dialect_insert
from app.models import CompletionRecord, Feedback


def add_completions(session: Session, batch: Sequence[ServedRequest]) -> None:
    rows = [
        {
            "id": s.completion_id,
            "tenant_id": s.tenant_id,
            "model": s.model,
            "served_model": s.served_model,
            "adapter_id": s.adapter_id,
            "created_at": int(s.finished_at),
        }
        for s in batch
    ]
    stmt = dialect_insert(session, CompletionRecord).values(rows)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


def get_completion(session: Session, tenant_id: str, completion_id: str) -> CompletionRecord | None:
    stmt = scoped(CompletionRecord, tenant_id).where(CompletionRecord.id == completion_id)
    return session.scalars(stmt).first()


def get_by_completion(session: Session, tenant_id: str, completion_id: str) -> Feedback | None:
    stmt = scoped(Feedback, tenant_id).where(Feedback.completion_id == completion_id)
    return session.scalars(stmt).first()


def add(session: Session, feedback: Feedback) -> None:
    session.add(feedback)
    session.flush()


def counts(session: Session, tenant_id: str, adapter_id: str, start: int, end: int) -> Counts:
    """Ratings of one adapter version with start <= created_at < end."""
    stmt = (
        scoped(Feedback, tenant_id)
        .where(
            Feedback.adapter_id == adapter_id,
            Feedback.created_at >= start,
            Feedback.created_at < end,
        )
        .with_only_columns(
            func.count(),
            func.coalesce(func.sum(case((Feedback.rating == "down", 1), else_=0)), 0),
        )
    )
    total, down = session.execute(stmt).one()
    return Counts(int(total), int(down))
