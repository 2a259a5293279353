from sqlalchemy.orm import Session

from app.kit.pagination import paginate
from app.kit.tenancy import scoped
from app.models import Adapter


def list_ready(session: Session, tenant_id: str) -> list[Adapter]:
    stmt = scoped(Adapter, tenant_id).where(Adapter.status == "ready").order_by(Adapter.id)
    return list(session.scalars(stmt))


def get(session: Session, tenant_id: str, adapter_id: str) -> Adapter | None:
    return session.scalars(scoped(Adapter, tenant_id).where(Adapter.id == adapter_id)).first()


def get_by_name(session: Session, tenant_id: str, name: str) -> Adapter | None:
    return session.scalars(scoped(Adapter, tenant_id).where(Adapter.name == name)).first()


def page(
    session: Session, tenant_id: str, after: str | None, limit: int
) -> tuple[list[Adapter], bool]:
    return paginate(session, scoped(Adapter, tenant_id), Adapter.id, after, limit)


def add(session: Session, adapter: Adapter) -> None:
    session.add(adapter)
    session.flush()
