from sqlalchemy import Select, update
from sqlalchemy.orm import Session

from app.kit.pagination import paginate
from app.kit.tenancy import scoped
from app.models import Adapter, AdapterExport


def list_ready(session: Session, tenant_id: str) -> list[Adapter]:
    stmt = scoped(Adapter, tenant_id).where(Adapter.status == "ready").order_by(Adapter.id)
    return list(session.scalars(stmt))


DELETED = "deleted"


def _live(tenant_id: str) -> Select[Adapter]:
    """A tenant's adapters that have not been deleted (a deleted row stays for the records
    that name it — usage, feedback, alias history — but is found by nothing else)."""
    return scoped(Adapter, tenant_id).where(Adapter.status != DELETED)


def get(session: Session, tenant_id: str, adapter_id: str) -> Adapter | None:
    return session.scalars(_live(tenant_id).where(Adapter.id == adapter_id)).first()


def get_by_name(session: Session, tenant_id: str, name: str) -> Adapter | None:
    return session.scalars(_live(tenant_id).where(Adapter.name == name)).first()


def page(
    session: Session, tenant_id: str, after: str | None, limit: int
) -> tuple[list[Adapter], bool]:
    return paginate(session, _live(tenant_id), Adapter.id, after, limit)


def mark_deleted(session: Session, adapter: Adapter) -> bool:
    result = session.execute(
        update(Adapter)
        .where(Adapter.id == adapter.id, Adapter.status != DELETED)
        .values(status=DELETED)
        .execution_options(synchronize_session=False)
    )
    session.refresh(adapter)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def get_export(
    session: Session, tenant_id: str, adapter_id: str, export_id: str
) -> AdapterExport | None:
    stmt = scoped(AdapterExport, tenant_id).where(
        AdapterExport.id == export_id, AdapterExport.adapter_id == adapter_id
    )
    return session.scalars(stmt).first()


def add(session: Session, adapter: Adapter | AdapterExport) -> None:
    session.add(adapter)
    session.flush()
