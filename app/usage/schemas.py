from datetime import date
from typing import Literal

from pydantic import BaseModel


class UsageDay(BaseModel):
    """One model version's usage on one UTC day."""

    object: Literal["usage.daily"] = "usage.daily"
    date: date
    model: str  # the `ft:` name of the adapter version, or the base model id
    adapter_id: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    latency_ms_avg: float
    latency_ms_max: int


class UsageTotals(BaseModel):
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class UsagePage(BaseModel):
    object: Literal["list"] = "list"
    start_date: date
    end_date: date
    data: list[UsageDay]
    totals: UsageTotals
    has_more: bool = False
