"""`Annotated` dependency aliases that keep route signatures to one line each."""

from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy.orm import Session

from app.auth import service
from app.db import get_session
from app.models import Tenant

# scope="function": the session commits and closes when the handler returns, before the
# response is sent, so enqueued tasks see committed rows and streams hold no connection.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def current_tenant(
    session: SessionDep, authorization: Annotated[str | None, Header()] = None
) -> Tenant:
    return service.authenticate(session, authorization)


CurrentTenant = Annotated[Tenant, Depends(current_tenant, scope="function")]
