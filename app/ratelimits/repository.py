from sqlalchemy.orm import Session

from app.kit.tenancy import scoped
from app.models import RateLimit


def get(session: Session, tenant_id: str) -> RateLimit | None:
    return session.scalars(scoped(RateLimit, tenant_id)).first()


def add(session: Session, row: RateLimit) -> None:
    session.add(row)
    session.flush()
