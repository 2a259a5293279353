from fastapi import APIRouter

from app.aliases import service
from app.aliases.schemas import (
    AliasCreate,
    AliasDeleted,
    AliasEventPublic,
    AliasPromote,
    AliasPublic,
    AliasUpdate,
    PromotionPublic,
)
from app.auth.dependencies import CurrentTenant, SessionDep
from app.kit.pagination import ListPage

router = APIRouter(tags=["aliases"])


@router.post("/v1/aliases", response_model=AliasPublic)
def create_alias(tenant: CurrentTenant, session: SessionDep, body: AliasCreate) -> AliasPublic:
    return service.create(session, tenant, body)


@router.get("/v1/aliases", response_model=ListPage[AliasPublic])
def list_aliases(tenant: CurrentTenant, session: SessionDep) -> ListPage[AliasPublic]:
    return ListPage(data=service.list_public(session, tenant), has_more=False)


@router.get("/v1/aliases/{name}", response_model=AliasPublic)
def retrieve_alias(tenant: CurrentTenant, session: SessionDep, name: str) -> AliasPublic:
    return service.retrieve(session, tenant, name)


@router.post("/v1/aliases/{name}", response_model=AliasPublic)
def repoint_alias(
    tenant: CurrentTenant, session: SessionDep, name: str, body: AliasUpdate
) -> AliasPublic:
    return service.repoint(session, tenant, name, body)


@router.post("/v1/aliases/{name}/rollback", response_model=AliasPublic)
def rollback_alias(tenant: CurrentTenant, session: SessionDep, name: str) -> AliasPublic:
    return service.rollback(session, tenant, name)


@router.post("/v1/aliases/{name}/promote", response_model=PromotionPublic)
def promote_alias(
    tenant: CurrentTenant, session: SessionDep, name: str, body: AliasPromote
) -> PromotionPublic:
    return service.promote(session, tenant, name, body)


@router.get("/v1/aliases/{name}/history", response_model=ListPage[AliasEventPublic])
def alias_history(
    tenant: CurrentTenant, session: SessionDep, name: str
) -> ListPage[AliasEventPublic]:
    return ListPage(data=service.history(session, tenant, name), has_more=False)


@router.delete("/v1/aliases/{name}", response_model=AliasDeleted)
def delete_alias(tenant: CurrentTenant, session: SessionDep, name: str) -> AliasDeleted:
    alias = service.delete(session, tenant, name)
    return AliasDeleted(id=alias.id, name=alias.name)
