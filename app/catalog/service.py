"""What a tenant may address as `model`: the catalog's base models, its own adapters and its
aliases."""

from sqlalchemy.orm import Session

from app.adapters import repository as adapters
from app.aliases import repository as aliases
from app.catalog.catalog import load_catalog
from app.catalog.schemas import ModelPublic
from app.errors import NotFound
from app.models import Tenant


def list_models(session: Session, tenant: Tenant) -> list[ModelPublic]:
    models = [
        ModelPublic(id=e.id, created=0, owned_by=e.owned_by, max_context=e.max_context)
        for e in load_catalog().values()
    ]
    ready = adapters.list_ready(session, tenant.id)
    models += [
        ModelPublic(id=a.name, created=a.created_at, owned_by=tenant.name, parent=a.base_model)
        for a in ready
    ]
    names = {a.id: a.name for a in ready}
    models += [
        # An alias' parent is what it serves right now: an adapter's `ft:` name or a base model.
        ModelPublic(
            id=alias.name,
            created=alias.created_at,
            owned_by=tenant.name,
            parent=names.get(alias.adapter_id) if alias.adapter_id else alias.base_model,
        )
        for alias in aliases.list_all(session, tenant.id)
    ]
    return models


def get_model(session: Session, tenant: Tenant, model_id: str) -> ModelPublic:
    for model in list_models(session, tenant):
        if model.id == model_id:
            return model
    raise NotFound(f"The model '{model_id}' does not exist.", param="model", code="model_not_found")
