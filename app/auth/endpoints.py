from fastapi import APIRouter

from app.auth import service
from app.auth.dependencies import CurrentPrincipal, SessionDep
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyPublic

router = APIRouter(tags=["api keys"])


@router.post("/v1/api_keys", response_model=ApiKeyCreated)
def create_api_key(
    principal: CurrentPrincipal, session: SessionDep, body: ApiKeyCreate
) -> ApiKeyCreated:
    key, raw = service.create_key(session, principal.tenant, principal.key, body.name, body.scopes)
    return ApiKeyCreated(**ApiKeyPublic.of(key).model_dump(), key=raw)


@router.get("/v1/api_keys", response_model=ApiKeyList)
def list_api_keys(principal: CurrentPrincipal, session: SessionDep) -> ApiKeyList:
    return ApiKeyList(
        data=[ApiKeyPublic.of(k) for k in service.list_keys(session, principal.tenant)]
    )


@router.delete("/v1/api_keys/{key_id}", response_model=ApiKeyPublic)
def revoke_api_key(principal: CurrentPrincipal, session: SessionDep, key_id: str) -> ApiKeyPublic:
    return ApiKeyPublic.of(service.revoke_key(session, principal.tenant, principal.key, key_id))
