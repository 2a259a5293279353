from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Tenant


def get_by_name(session: Session, name: str) -> Tenant | None:
    return session.scalars(select(Tenant).where(Tenant.name == name)).first()


def add(session: Session, tenant: Tenant) -> None:
    session.add(tenant)
    session.flush()


def list_all(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.created_at)))
