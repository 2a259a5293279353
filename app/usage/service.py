"""Usage reports: per day and model version, within the tenant, for a date range."""

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from app.adapters import repository as adapters_repo
from app.aliases import service as aliases
from app.catalog.catalog import get_base_model
from app.errors import InvalidRequest
from app.models import Tenant
from app.usage import repository
from app.usage.schemas import UsageDay, UsagePage, UsageTotals

DEFAULT_DAYS = 30
MAX_DAYS = 366


def _served_models(session: Session, tenant: Tenant, model: str) -> list[str]:
    """What `model` names: a base model, an adapter version (id or `ft:` name), or an alias
    (its current and previous targets, the versions it has served lately)."""
    if get_base_model(model) is not None:
        return [model]
    adapter = adapters_repo.get(session, tenant.id, model) or adapters_repo.get_by_name(
        session, tenant.id, model
    )
    if adapter is not None:
        return [adapter.id]
    alias = aliases.lookup(session, tenant.id, model)
    if alias is not None:
        targets = [
            alias.adapter_id or alias.base_model,
            alias.previous_adapter_id or alias.previous_base_model,
        ]
        return [t for t in targets if t]
    return []


def report(
    session: Session,
    tenant: Tenant,
    start_date: date | None,
    end_date: date | None,
    model: str | None,
) -> UsagePage:
    end = end_date or datetime.now(UTC).date()
    start = start_date or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidRequest("start_date must not be after end_date.", param="start_date")
    if (end - start).days >= MAX_DAYS:
        raise InvalidRequest(f"At most {MAX_DAYS} days per request.", param="start_date")
    served = _served_models(session, tenant, model) if model else None
    names = {a.id: a.name for a in adapters_repo.list_ready(session, tenant.id)}
    data, totals = [], UsageTotals()
    for row in repository.daily(session, tenant.id, start, end, served):
        total = row.prompt_tokens + row.completion_tokens
        model = names.get(row.adapter_id, row.served_model) if row.adapter_id else row.served_model
        latency_avg = round(row.latency_ms_total / row.requests, 1) if row.requests else 0.0
        data.append(
            UsageDay(
                date=row.day,
                model=model,
                adapter_id=row.adapter_id,
                requests=row.requests,
                prompt_tokens=row.prompt_tokens,
                completion_tokens=row.completion_tokens,
                total_tokens=total,
                latency_ms_avg=latency_avg,
                latency_ms_max=row.latency_ms_max,
            )
        )
        totals.requests += row.requests
        totals.prompt_tokens += row.prompt_tokens
        totals.completion_tokens += row.completion_tokens
        totals.total_tokens += total
    return UsagePage(start_date=start, end_date=end, data=data, totals=totals)
