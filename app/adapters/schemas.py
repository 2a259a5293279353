from typing import Any, Literal

from pydantic import BaseModel

from app.models import Adapter


class AdapterPublic(BaseModel):
    """One adapter version. `name` is its `ft:…` model id; storage paths are never shown."""

    id: str
    object: Literal["adapter"] = "adapter"
    name: str
    base_model: str
    fine_tuning_job_id: str | None
    status: str
    created_at: int
    manifest: dict[str, Any]

    @classmethod
    def of(cls, a: Adapter) -> "AdapterPublic":
        return cls(
            id=a.id,
            name=a.name,
            base_model=a.base_model,
            fine_tuning_job_id=a.job_id,
            status=a.status,
            created_at=a.created_at,
            manifest=a.manifest,
        )
