"""Adapter versions a tenant owns, and whether one may be served."""

from sqlalchemy.orm import Session

from app.adapters import repository
from app.catalog.catalog import get_base_model
from app.errors import Conflict, NotFound
from app.kit.templates import served_chat_template_sha256
from app.models import Adapter


def get(session: Session, tenant_id: str, adapter_id: str, param: str = "adapter_id") -> Adapter:
    adapter = repository.get(session, tenant_id, adapter_id)
    if adapter is None:
        raise NotFound(f"No such adapter: '{adapter_id}'.", param=param, code="adapter_not_found")
    return adapter


def find(session: Session, tenant_id: str, ref: str) -> Adapter | None:
    """An adapter by id (`adapter-…`) or by its `ft:…` name, within the tenant."""
    return repository.get(session, tenant_id, ref) or repository.get_by_name(
        session, tenant_id, ref
    )


def check_servable(adapter: Adapter, param: str = "model") -> None:
    """Refuse an adapter that is not ready, or whose chat template differs from the one the
    serving base model uses: it would be prompted in a format it was not trained on."""
    if adapter.status != "ready":
        raise Conflict(
            f"Adapter '{adapter.name}' is {adapter.status}, not ready to serve.",
            param=param,
            code="adapter_not_ready",
        )
    entry = get_base_model(adapter.base_model)
    if entry is None:
        raise Conflict(
            f"Adapter '{adapter.name}' was trained on '{adapter.base_model}', which this "
            "platform no longer serves.",
            param=param,
            code="base_model_unavailable",
        )
    trained = (adapter.manifest or {}).get("chat_template_sha256")
    served = served_chat_template_sha256(entry.local_path)
    if trained and served and trained != served:
        raise Conflict(
            f"Adapter '{adapter.name}' was trained with a different chat template "
            f"(sha256 {trained[:12]}…) than the one '{adapter.base_model}' is served with "
            f"(sha256 {served[:12]}…); retrain it on the current base model.",
            param=param,
            code="chat_template_mismatch",
        )
