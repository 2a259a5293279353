"""Aliases: stable, tenant-scoped model names that point at one adapter version (or a base
model plus a system prompt). Repointing is one UPDATE, so requests switch versions atomically
and the previous target is kept for `rollback`."""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.adapters import repository as adapters_repo
from app.adapters import service as adapters
from app.aliases import repository
from app.aliases.schemas import AliasCreate, AliasPublic, AliasTarget, adapter_names
from app.catalog.catalog import get_base_model
from app.errors import Conflict, InvalidRequest, NotFound
from app.kit.ids import new_id
from app.models import Alias, Tenant


@dataclass(frozen=True)
class ResolvedTarget:
    adapter_id: str | None
    base_model: str | None
    system_prompt: str | None


def _target(session: Session, tenant: Tenant, body: AliasTarget) -> ResolvedTarget:
    if body.adapter is not None:
        adapter = adapters.find(session, tenant.id, body.adapter)
        if adapter is None:
            raise NotFound(
                f"No such adapter: '{body.adapter}'.", param="adapter", code="adapter_not_found"
            )
        adapters.check_servable(adapter, param="adapter")
        return ResolvedTarget(adapter.id, None, body.system_prompt)
    assert body.base_model is not None
    if get_base_model(body.base_model) is None:
        raise InvalidRequest(
            f"Base model '{body.base_model}' is not available.",
            param="base_model",
            code="model_not_available",
        )
    return ResolvedTarget(None, body.base_model, body.system_prompt)


def _public(session: Session, tenant: Tenant, alias: Alias) -> AliasPublic:
    return AliasPublic.of(alias, adapter_names(adapters_repo.list_ready(session, tenant.id)))


def get(session: Session, tenant: Tenant, name: str) -> Alias:
    alias = repository.get_by_name(session, tenant.id, name)
    if alias is None:
        raise NotFound(f"No such alias: '{name}'.", param="name", code="alias_not_found")
    return alias


def lookup(session: Session, tenant_id: str, name: str) -> Alias | None:
    return repository.get_by_name(session, tenant_id, name)


def create(session: Session, tenant: Tenant, body: AliasCreate) -> AliasPublic:
    if get_base_model(body.name) is not None:
        raise InvalidRequest(
            f"'{body.name}' is a base model id; pick another alias name.",
            param="name",
            code="alias_name_reserved",
        )
    if repository.get_by_name(session, tenant.id, body.name) is not None:
        raise Conflict(
            f"Alias '{body.name}' already exists; POST /v1/aliases/{body.name} repoints it.",
            param="name",
            code="alias_exists",
        )
    target = _target(session, tenant, body)
    alias = Alias(
        id=new_id("alias"),
        tenant_id=tenant.id,
        name=body.name,
        adapter_id=target.adapter_id,
        base_model=target.base_model,
        system_prompt=target.system_prompt,
    )
    repository.add(session, alias)
    return _public(session, tenant, alias)


def list_public(session: Session, tenant: Tenant) -> list[AliasPublic]:
    names = adapter_names(adapters_repo.list_ready(session, tenant.id))
    return [AliasPublic.of(a, names) for a in repository.list_all(session, tenant.id)]


def retrieve(session: Session, tenant: Tenant, name: str) -> AliasPublic:
    return _public(session, tenant, get(session, tenant, name))


def repoint(session: Session, tenant: Tenant, name: str, body: AliasTarget) -> AliasPublic:
    alias = get(session, tenant, name)
    target = _target(session, tenant, body)
    repository.repoint(session, alias, target.adapter_id, target.base_model, target.system_prompt)
    return _public(session, tenant, alias)


def rollback(session: Session, tenant: Tenant, name: str) -> AliasPublic:
    alias = get(session, tenant, name)
    if not repository.swap_with_previous(session, alias):
        raise Conflict(
            f"Alias '{name}' has no previous target to roll back to.",
            param="name",
            code="no_previous_target",
        )
    return _public(session, tenant, alias)


def delete(session: Session, tenant: Tenant, name: str) -> Alias:
    alias = get(session, tenant, name)
    repository.delete(session, alias)
    return alias
