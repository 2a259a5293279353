from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlalchemy.orm import Session

from app.kit.tenancy import scoped
from app.kit.upsert import dialect_insert
from app.models import UsageDaily

if TYPE_CHECKING:
    from app.usage.recorder import DailyCounts, UsageKey


def add_counts(session: Session, batch: "dict[UsageKey, DailyCounts]") -> None:
    """One upsert for the whole batch: counters add up, the maximum latency is kept."""
    rows = [
        {
            "tenant_id": tenant_id,
            "day": day,
            "served_model": served_model,
            "adapter_id": c.adapter_id,
            "requests": c.requests,
            "prompt_tokens": c.prompt_tokens,
            "completion_tokens": c.completion_tokens,
            "latency_ms_total": c.latency_ms_total,
            "latency_ms_max": c.latency_ms_max,
        }
        for (tenant_id, day, served_model), c in sorted(batch.items())
    ]
    stmt = dialect_insert(session, UsageDaily).values(rows)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "day", "served_model"],
        set_={
            "requests": UsageDaily.requests + new.requests,
            "prompt_tokens": UsageDaily.prompt_tokens + new.prompt_tokens,
            "completion_tokens": UsageDaily.completion_tokens + new.completion_tokens,
            "latency_ms_total": UsageDaily.latency_ms_total + new.latency_ms_total,
            "latency_ms_max": func.greatest(UsageDaily.latency_ms_max, new.latency_ms_max)
            if session.get_bind().dialect.name == "postgresql"
            else func.max(UsageDaily.latency_ms_max, new.latency_ms_max),
        },
    )
    session.execute(stmt)


def daily(
    session: Session,
    tenant_id: str,
    start: date,
    end: date,
    served_models: list[str] | None,
) -> list[UsageDaily]:
    stmt = scoped(UsageDaily, tenant_id).where(UsageDaily.day >= start, UsageDaily.day <= end)
    if served_models is not None:
        stmt = stmt.where(UsageDaily.served_model.in_(served_models))
    return list(session.scalars(stmt.order_by(UsageDaily.day, UsageDaily.served_model)))
