"""Aliases: stable, tenant-scoped model names that point at one adapter version (or a base
model plus a system prompt). Repointing is one UPDATE, so requests switch versions atomically
and the previous target is kept for `rollback`."""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.adapters import repository as adapters_repo
from app.adapters import service as adapters
from app.aliases import repository
from app.aliases.schemas import (
    AliasCreate,
    AliasEventPublic,
    AliasPromote,
    AliasPublic,
    AliasTarget,
    PromotionPublic,
    adapter_names,
)
from app.audit import service as audit
from app.catalog.catalog import get_base_model
from app.config import get_settings
from app.errors import Conflict, InvalidRequest, NotFound
from app.evals import gate
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
    repository.add_event(session, alias, "create")
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
    repository.add_event(session, alias, "repoint")
    return _public(session, tenant, alias)


def rollback(session: Session, tenant: Tenant, name: str) -> AliasPublic:
    alias = get(session, tenant, name)
    if not repository.swap_with_previous(session, alias):
        raise Conflict(
            f"Alias '{name}' has no previous target to roll back to.",
            param="name",
            code="no_previous_target",
        )
    repository.add_event(session, alias, "rollback")
    audit.record(
        session,
        tenant_id=tenant.id,
        action="alias.rollback",
        target_type="alias",
        target_id=alias.id,
        detail={"name": alias.name, "version": alias.version, "adapter_id": alias.adapter_id},
    )
    return _public(session, tenant, alias)


def _version_of(session: Session, tenant: Tenant, target: ResolvedTarget) -> gate.Version:
    if target.adapter_id is not None:
        adapter = adapters.get(session, tenant.id, target.adapter_id, param="adapter")
        return gate.Version(adapter.id, adapter.base_model, target.system_prompt)
    assert target.base_model is not None
    return gate.Version(None, target.base_model, target.system_prompt)


def promote(session: Session, tenant: Tenant, name: str, body: AliasPromote) -> PromotionPublic:
    """Repoint `name` at the candidate if the promotion gate passes; a forced promotion skips
    the gate's verdict, needs a reason, and is audited with the gate's findings."""
    if body.force and not body.reason:
        raise InvalidRequest(
            "A forced promotion needs a 'reason' (it is kept in the audit log).",
            param="reason",
            code="reason_required",
        )
    alias = get(session, tenant, name)
    target = _target(session, tenant, body)
    current = ResolvedTarget(alias.adapter_id, alias.base_model, alias.system_prompt)
    if target == current:
        raise Conflict(
            f"Alias '{name}' already points at this target.",
            param="adapter",
            code="already_current",
        )
    result = gate.check(
        session,
        tenant.id,
        _version_of(session, tenant, current),
        _version_of(session, tenant, target),
        body.eval_file,
        get_settings().promotion_max_regression,
    )
    if not result.passed and not body.force:
        raise Conflict(result.message, param="adapter", code=result.code)
    forced = not result.passed
    repository.repoint(session, alias, target.adapter_id, target.base_model, target.system_prompt)
    action = "promote_forced" if forced else "promote"
    repository.add_event(session, alias, action, body.reason)
    audit.record(
        session,
        tenant_id=tenant.id,
        action=f"alias.{action}",
        target_type="alias",
        target_id=alias.id,
        reason=body.reason,
        detail={
            "name": alias.name,
            "version": alias.version,
            "adapter_id": alias.adapter_id,
            "previous_adapter_id": alias.previous_adapter_id,
            "gate": result.to_dict(),
        },
    )
    return PromotionPublic(
        alias=_public(session, tenant, alias), forced=forced, gate=result.to_dict()
    )


def history(session: Session, tenant: Tenant, name: str) -> list[AliasEventPublic]:
    alias = get(session, tenant, name)
    return [AliasEventPublic.of(e) for e in repository.events(session, tenant.id, alias.id)]


def delete(session: Session, tenant: Tenant, name: str) -> Alias:
    alias = get(session, tenant, name)
    repository.delete(session, alias)
    return alias
