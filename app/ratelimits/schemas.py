from typing import Literal

from pydantic import BaseModel


class RateLimitsPublic(BaseModel):
    object: Literal["rate_limits"] = "rate_limits"
    requests_per_minute: int
    tokens_per_minute: int
