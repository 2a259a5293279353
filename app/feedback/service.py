"""Feedback on completions, tied to the adapter version that produced them, and the drift
report built from it."""

from sqlalchemy.orm import Session

from app.adapters import service as adapters
from app.config import get_settings
from app.errors import NotFound
from app.feedback import drift, repository
from app.feedback.schemas import (
    DriftBaseline,
    DriftReport,
    DriftWindow,
    FeedbackCreate,
    FeedbackPublic,
)
from app.kit.ids import new_id, now
from app.models import Feedback, Tenant


def rate(session: Session, tenant: Tenant, body: FeedbackCreate) -> FeedbackPublic:
    """Record a rating; rating the same completion again replaces the earlier rating."""
    completion = repository.get_completion(session, tenant.id, body.completion_id)
    if completion is None:
        raise NotFound(
            f"No such completion: '{body.completion_id}'.",
            param="completion_id",
            code="completion_not_found",
        )
    feedback = repository.get_by_completion(session, tenant.id, completion.id)
    if feedback is None:
        feedback = Feedback(
            id=new_id("feedback"),
            tenant_id=tenant.id,
            completion_id=completion.id,
            adapter_id=completion.adapter_id,
            served_model=completion.served_model,
            rating=body.rating,
            comment=body.comment,
        )
        repository.add(session, feedback)
    else:
        feedback.rating = body.rating
        feedback.comment = body.comment
        feedback.created_at = now()
        session.flush()
    return FeedbackPublic.of(feedback, completion.model)


def drift_report(
    session: Session, tenant: Tenant, adapter_id: str, at: int | None = None
) -> DriftReport:
    adapter = adapters.get(session, tenant.id, adapter_id)
    settings = get_settings()
    current = now() if at is None else at
    base_start, base_end = drift.baseline_span(adapter.created_at)
    baseline = repository.counts(session, tenant.id, adapter.id, base_start, base_end)
    windows = []
    for name, seconds in drift.WINDOWS:
        span = drift.window_span(current, seconds, base_end)
        counts = repository.counts(session, tenant.id, adapter.id, span[0], span[1] + 1)
        windows.append(
            drift.assess_window(
                name, span, counts, baseline, settings.drift_margin, settings.drift_min_volume
            )
        )
    return DriftReport(
        adapter_id=adapter.id,
        model=adapter.name,
        status=drift.overall(windows),  # type: ignore[arg-type]
        margin=settings.drift_margin,
        min_volume=settings.drift_min_volume,
        baseline=DriftBaseline(
            ratings=baseline.total,
            thumbs_down=baseline.down,
            down_rate=baseline.down_rate,
            start=base_start,
            end=base_end,
            complete=current >= base_end,
        ),
        windows=[
            DriftWindow(
                window=w.name,
                start=w.start,
                end=w.end,
                ratings=w.counts.total,
                thumbs_down=w.counts.down,
                down_rate=w.counts.down_rate,
                delta=w.delta,
                status=w.status,  # type: ignore[arg-type]
            )
            for w in windows
        ],
    )
