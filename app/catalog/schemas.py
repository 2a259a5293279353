from typing import Literal

from pydantic import BaseModel


class ModelPublic(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    parent: str | None = None
    max_context: int | None = None
