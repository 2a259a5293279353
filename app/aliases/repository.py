from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from app.kit.ids import new_id, now
from app.kit.tenancy import scoped
from app.models import Alias, AliasEvent


def get_by_name(session: Session, tenant_id: str, name: str) -> Alias | None:
    return session.scalars(scoped(Alias, tenant_id).where(Alias.name == name)).first()


def list_all(session: Session, tenant_id: str) -> list[Alias]:
    return list(session.scalars(scoped(Alias, tenant_id).order_by(Alias.name)))


def add(session: Session, alias: Alias) -> None:
    session.add(alias)
    session.flush()


def delete(session: Session, alias: Alias) -> None:
    session.delete(alias)
    session.flush()


def repoint(
    session: Session,
    alias: Alias,
    adapter_id: str | None,
    base_model: str | None,
    system_prompt: str | None,
) -> None:
    """One UPDATE moves the current target into `previous_*` and sets the new one, so every
    reader sees either the old or the new alias, never a mix."""
    session.execute(
        update(Alias)
        .where(Alias.id == alias.id)
        .values(
            previous_adapter_id=Alias.adapter_id,
            previous_base_model=Alias.base_model,
            previous_system_prompt=Alias.system_prompt,
            adapter_id=adapter_id,
            base_model=base_model,
            system_prompt=system_prompt,
            version=Alias.version + 1,
            updated_at=now(),
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(alias)


def swap_with_previous(session: Session, alias: Alias) -> bool:
    """Rollback: exchange the current and previous targets in one UPDATE (the right-hand
    sides read the row as it was). False if there is no previous target."""
    result = session.execute(
        update(Alias)
        .where(
            Alias.id == alias.id,
            or_(Alias.previous_adapter_id.is_not(None), Alias.previous_base_model.is_not(None)),
        )
        .values(
            adapter_id=Alias.previous_adapter_id,
            base_model=Alias.previous_base_model,
            system_prompt=Alias.previous_system_prompt,
            previous_adapter_id=Alias.adapter_id,
            previous_base_model=Alias.base_model,
            previous_system_prompt=Alias.system_prompt,
            version=Alias.version + 1,
            updated_at=now(),
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(alias)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_event(session: Session, alias: Alias, action: str, reason: str | None = None) -> None:
    """Record the alias' target as it is now (after `action`) in its history."""
    session.add(
        AliasEvent(
            id=new_id("aliasevt"),
            tenant_id=alias.tenant_id,
            alias_id=alias.id,
            action=action,
            version=alias.version,
            adapter_id=alias.adapter_id,
            base_model=alias.base_model,
            system_prompt=alias.system_prompt,
            reason=reason,
        )
    )
    session.flush()


def events(session: Session, tenant_id: str, alias_id: str) -> list[AliasEvent]:
    stmt = scoped(AliasEvent, tenant_id).where(AliasEvent.alias_id == alias_id)
    return list(session.scalars(stmt.order_by(AliasEvent.id.desc()).limit(500)))


def pointing_at(session: Session, tenant_id: str, adapter_id: str) -> list[Alias]:
    """Aliases whose current or previous target is this adapter version."""
    stmt = scoped(Alias, tenant_id).where(
        or_(Alias.adapter_id == adapter_id, Alias.previous_adapter_id == adapter_id)
    )
    return list(session.scalars(stmt.order_by(Alias.name)))
