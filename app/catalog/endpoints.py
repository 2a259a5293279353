from fastapi import APIRouter

from app.auth.dependencies import CurrentTenant, SessionDep
from app.catalog import service
from app.catalog.schemas import ModelPublic
from app.kit.pagination import ListPage

router = APIRouter(tags=["models"])


@router.get("/v1/models", response_model=ListPage[ModelPublic])
def list_models(tenant: CurrentTenant, session: SessionDep) -> ListPage[ModelPublic]:
    return ListPage(data=service.list_models(session, tenant), has_more=False)


@router.get("/v1/models/{model_id:path}", response_model=ModelPublic)
def retrieve_model(tenant: CurrentTenant, session: SessionDep, model_id: str) -> ModelPublic:
    return service.get_model(session, tenant, model_id)
