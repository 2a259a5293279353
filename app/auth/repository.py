from sqlalchemy import select
from sqlalchemy.orm import Session

from app.kit.tenancy import scoped
from app.models import ApiKey, Tenant


def add(session: Session, key: ApiKey) -> None:
    session.add(key)
    session.flush()


def active_key(session: Session, key_hash: str) -> tuple[Tenant, ApiKey] | None:
    stmt = (
        select(Tenant, ApiKey)
        .join(ApiKey, ApiKey.tenant_id == Tenant.id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )
    row = session.execute(stmt).first()
    return (row[0], row[1]) if row else None


def keys_of(session: Session, tenant_id: str) -> list[ApiKey]:
    return list(session.scalars(scoped(ApiKey, tenant_id).order_by(ApiKey.id.desc())))


def get(session: Session, tenant_id: str, key_id: str) -> ApiKey | None:
    return session.scalars(scoped(ApiKey, tenant_id).where(ApiKey.id == key_id)).first()
