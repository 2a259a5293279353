"""`Annotated` dependency aliases that keep route signatures to one line each."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from app.auth import service
from app.db import get_session
from app.models import ApiKey, Tenant

# scope="function": the session commits and closes when the handler returns, before the
# response is sent, so enqueued tasks see committed rows and streams hold no connection.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


@dataclass(frozen=True)
class Principal:
    tenant: Tenant
    key: ApiKey


def current_principal(
    request: Request,
    session: SessionDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    """The tenant and key behind the request; the key's scopes must allow the route."""
    tenant, key = service.authenticate(session, authorization)
    route = request.scope.get("route")
    service.authorize(key, request.method, getattr(route, "path", request.url.path))
    return Principal(tenant, key)


CurrentPrincipal = Annotated[Principal, Depends(current_principal, scope="function")]


def current_tenant(principal: CurrentPrincipal) -> Tenant:
    return principal.tenant


CurrentTenant = Annotated[Tenant, Depends(current_tenant, scope="function")]
