from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.auth.scopes import Scope
from app.models import ApiKey


def _all_scopes() -> list[Scope]:
    return ["all"]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=128)
    scopes: list[Scope] = Field(default_factory=_all_scopes, min_length=1)


class ApiKeyPublic(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str | None
    prefix: str  # the first characters of the key, to tell keys apart
    scopes: list[str]
    created_at: int
    revoked_at: int | None

    @classmethod
    def of(cls, key: ApiKey) -> "ApiKeyPublic":
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            created_at=key.created_at,
            revoked_at=key.revoked_at,
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str  # shown once: only a hash is stored


class ApiKeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ApiKeyPublic]
