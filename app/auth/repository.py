from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ApiKey, Tenant


def add(session: Session, key: ApiKey) -> None:
    session.add(key)
    session.flush()


def tenant_for_key_hash(session: Session, key_hash: str) -> Tenant | None:
    stmt = (
        select(Tenant)
        .join(ApiKey, ApiKey.tenant_id == Tenant.id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )
    return session.scalars(stmt).first()
