"""Alias shapes. A name is 1-64 letters, digits, '.', '_' or '-' (starting with a letter or
digit), optionally followed by '@' and a 1-32 character label of the same kind
(`support-bot@prod`); no path characters, no ':' (that is for `ft:` names)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.models import Adapter, Alias, AliasEvent

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}(@[A-Za-z0-9][A-Za-z0-9._-]{0,31})?$"
MAX_SYSTEM_PROMPT = 32_000


class AliasTarget(BaseModel):
    """Either an adapter version (id or `ft:` name), or a base model with a system prompt."""

    model_config = ConfigDict(extra="forbid")

    adapter: str | None = Field(None, min_length=1, max_length=255)
    base_model: str | None = Field(None, min_length=1, max_length=255)
    system_prompt: str | None = Field(None, max_length=MAX_SYSTEM_PROMPT)

    @model_validator(mode="after")
    def _one_target(self) -> "AliasTarget":
        if (self.adapter is None) == (self.base_model is None):
            raise ValueError("give exactly one of 'adapter' or 'base_model'")
        return self


class AliasCreate(AliasTarget):
    name: str = Field(..., pattern=NAME_PATTERN)


class AliasUpdate(AliasTarget):
    pass


class AliasPromote(AliasTarget):
    """Point the alias at a candidate if the promotion gate passes (see app/evals/gate.py);
    `force` skips the gate and needs a `reason`, which goes to the audit log."""

    eval_file: str | None = Field(None, min_length=1, max_length=64)
    force: bool = False
    reason: str | None = Field(None, min_length=1, max_length=2000)


class AliasTargetPublic(BaseModel):
    adapter_id: str | None
    model: str  # the adapter's `ft:` name, or the base model
    system_prompt: str | None


class AliasPublic(BaseModel):
    id: str
    object: Literal["alias"] = "alias"
    name: str
    target: AliasTargetPublic
    previous: AliasTargetPublic | None
    version: int
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, alias: Alias, adapter_names: dict[str, str]) -> "AliasPublic":
        def target(adapter_id: str | None, base: str | None, prompt: str | None):  # type: ignore[no-untyped-def]
            if adapter_id is None and base is None:
                return None
            model = adapter_names.get(adapter_id, adapter_id) if adapter_id else base
            return AliasTargetPublic(adapter_id=adapter_id, model=model or "", system_prompt=prompt)

        return cls(
            id=alias.id,
            name=alias.name,
            target=target(alias.adapter_id, alias.base_model, alias.system_prompt),
            previous=target(
                alias.previous_adapter_id, alias.previous_base_model, alias.previous_system_prompt
            ),
            version=alias.version,
            created_at=alias.created_at,
            updated_at=alias.updated_at,
        )


class AliasDeleted(BaseModel):
    id: str
    name: str
    object: Literal["alias"] = "alias"
    deleted: bool = True


def adapter_names(adapters: list[Adapter]) -> dict[str, str]:
    return {a.id: a.name for a in adapters}


class PromotionPublic(BaseModel):
    object: Literal["alias.promotion"] = "alias.promotion"
    alias: AliasPublic
    forced: bool
    gate: dict[str, Any]


class AliasEventPublic(BaseModel):
    id: str
    object: Literal["alias.event"] = "alias.event"
    action: str
    version: int
    adapter_id: str | None
    base_model: str | None
    system_prompt: str | None
    reason: str | None
    created_at: int

    @classmethod
    def of(cls, e: AliasEvent) -> "AliasEventPublic":
        return cls(
            id=e.id,
            action=e.action,
            version=e.version,
            adapter_id=e.adapter_id,
            base_model=e.base_model,
            system_prompt=e.system_prompt,
            reason=e.reason,
            created_at=e.created_at,
        )
