"""API keys: `lpx-` + 32 random bytes. Only an HMAC-SHA256 of the key (peppered with the
server secret) is stored, so a leaked database does not leak usable keys. A key is shown once,
when it is issued; keys are named, scoped (`all` or `inference`) and revocable, so a key is
rotated without downtime by issuing the new one, moving clients, then revoking the old one."""

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth import callers, repository
from app.auth.scopes import SCOPES, allows
from app.config import get_settings
from app.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound, PermissionDenied
from app.kit.ids import new_id, now
from app.models import ApiKey, Tenant

KEY_PREFIX = "lpx-"


def hash_key(raw_key: str) -> str:
    pepper = get_settings().secret_key.encode()
    return hmac.new(pepper, raw_key.encode(), hashlib.sha256).hexdigest()


def issue_key(
    session: Session,
    tenant_id: str,
    name: str | None = None,
    scopes: Sequence[str] = ("all",),
) -> tuple[ApiKey, str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if not scopes or unknown:
        raise InvalidRequest(
            f"scopes must be a non-empty list of {list(SCOPES)}; unknown: {unknown}",
            param="scopes",
        )
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key"),
        tenant_id=tenant_id,
        key_hash=hash_key(raw),
        prefix=raw[:10],
        name=name,
        scopes=sorted(set(scopes)),
    )
    repository.add(session, key)
    return key, raw


def bearer_key(authorization: str | None) -> str:
    """The raw key of an `Authorization: Bearer <key>` header."""
    if not authorization:
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
            code="missing_api_key",
        )
    scheme, _, raw = authorization.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise AuthenticationFailed("Authorization header must be 'Bearer YOUR_KEY'.")
    return raw.strip()


def authenticate(session: Session, authorization: str | None) -> tuple[Tenant, ApiKey]:
    found = repository.active_key(session, hash_key(bearer_key(authorization)))
    if found is None:
        raise AuthenticationFailed("Incorrect API key provided.")
    return found


def authorize(key: ApiKey, method: str, route: str) -> None:
    authorize_scopes(key.prefix, key.scopes, method, route)


def authorize_scopes(prefix: str, scopes: Sequence[str], method: str, route: str) -> None:
    if not allows(list(scopes), method, route):
        raise PermissionDenied(
            f"This API key ({prefix}…, scopes {list(scopes)}) may not call {method} {route}; "
            "use a key with the 'all' scope.",
        )


def create_key(
    session: Session, tenant: Tenant, actor: ApiKey, name: str | None, scopes: Sequence[str]
) -> tuple[ApiKey, str]:
    key, raw = issue_key(session, tenant.id, name, scopes)
    audit.record(
        session,
        tenant_id=tenant.id,
        action="api_key.create",
        target_type="api_key",
        target_id=key.id,
        actor=actor.id,
        detail={"name": name, "scopes": key.scopes, "prefix": key.prefix},
    )
    return key, raw


def list_keys(session: Session, tenant: Tenant) -> list[ApiKey]:
    return repository.keys_of(session, tenant.id)


def revoke_key(session: Session, tenant: Tenant, actor: ApiKey, key_id: str) -> ApiKey:
    key = repository.get(session, tenant.id, key_id)
    if key is None:
        raise NotFound(f"No such API key: '{key_id}'.", param="key_id", code="api_key_not_found")
    if key.revoked_at is not None:
        return key
    others = [
        k
        for k in repository.keys_of(session, tenant.id)
        if k.id != key.id and k.revoked_at is None and "all" in k.scopes
    ]
    if "all" in key.scopes and not others:
        raise Conflict(
            "This is the tenant's last active key with the 'all' scope; issue another one "
            "before revoking it.",
            param="key_id",
            code="last_admin_key",
        )
    key.revoked_at = now()
    callers.forget_after_commit(session)  # this process stops honouring it at once
    audit.record(
        session,
        tenant_id=tenant.id,
        action="api_key.revoke",
        target_type="api_key",
        target_id=key.id,
        actor=actor.id,
        detail={"prefix": key.prefix},
    )
    session.flush()
    return key
