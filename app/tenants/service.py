import re

from sqlalchemy.orm import Session

from app.auth.service import issue_key
from app.errors import Conflict, InvalidRequest
from app.kit.ids import new_id
from app.models import Tenant
from app.tenants import repository

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def create_tenant(session: Session, name: str) -> tuple[Tenant, str]:
    """Create a tenant and its first API key; the raw key is returned once, never stored."""
    if not NAME_RE.match(name):
        raise InvalidRequest(
            "Tenant name must be 1-40 lowercase letters, digits or '-', starting with a "
            "letter or digit.",
            param="name",
        )
    if repository.get_by_name(session, name) is not None:
        raise Conflict(f"Tenant '{name}' already exists.", param="name")
    tenant = Tenant(id=new_id("tenant"), name=name)
    repository.add(session, tenant)
    _, raw_key = issue_key(session, tenant.id)
    return tenant, raw_key
