from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models import Feedback


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    completion_id: str = Field(..., min_length=1, max_length=128)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=4000)


class FeedbackPublic(BaseModel):
    id: str
    object: Literal["feedback"] = "feedback"
    completion_id: str
    rating: str
    comment: str | None
    model: str  # what the completion was requested as (alias, `ft:` name or base model)
    adapter_id: str | None  # the adapter version that produced it
    created_at: int

    @classmethod
    def of(cls, f: Feedback, model: str) -> "FeedbackPublic":
        return cls(
            id=f.id,
            completion_id=f.completion_id,
            rating=f.rating,
            comment=f.comment,
            model=model,
            adapter_id=f.adapter_id,
            created_at=f.created_at,
        )


class DriftCounts(BaseModel):
    ratings: int
    thumbs_down: int
    down_rate: float | None


class DriftWindow(DriftCounts):
    window: str
    start: int
    end: int
    delta: float | None
    status: Literal["ok", "alert", "insufficient_data"]


class DriftBaseline(DriftCounts):
    start: int
    end: int
    complete: bool  # the first week is over


class DriftReport(BaseModel):
    object: Literal["adapter.drift"] = "adapter.drift"
    adapter_id: str
    model: str
    status: Literal["ok", "alert", "insufficient_data"]
    margin: float
    min_volume: int
    baseline: DriftBaseline
    windows: list[DriftWindow]
