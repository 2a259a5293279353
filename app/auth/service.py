"""API keys: `lpx-` + 32 random bytes. Only an HMAC-SHA256 of the key (peppered with the
server secret) is stored, so a leaked database does not leak usable keys."""

import hashlib
import hmac
import secrets

from sqlalchemy.orm import Session

from app.auth import repository
from app.config import get_settings
from app.errors import AuthenticationFailed
from app.kit.ids import new_id
from app.models import ApiKey, Tenant

KEY_PREFIX = "lpx-"


def hash_key(raw_key: str) -> str:
    pepper = get_settings().secret_key.encode()
    return hmac.new(pepper, raw_key.encode(), hashlib.sha256).hexdigest()


def issue_key(session: Session, tenant_id: str) -> tuple[ApiKey, str]:
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(id=new_id("key"), tenant_id=tenant_id, key_hash=hash_key(raw), prefix=raw[:10])
    repository.add(session, key)
    return key, raw


def authenticate(session: Session, authorization: str | None) -> Tenant:
    if not authorization:
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
            code="missing_api_key",
        )
    scheme, _, raw = authorization.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise AuthenticationFailed("Authorization header must be 'Bearer YOUR_KEY'.")
    tenant = repository.tenant_for_key_hash(session, hash_key(raw.strip()))
    if tenant is None:
        raise AuthenticationFailed("Incorrect API key provided.")
    return tenant
