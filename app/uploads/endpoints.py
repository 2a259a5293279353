from fastapi import APIRouter, Request

from app.auth.dependencies import CurrentTenant, SessionDep
from app.files.multipart import IncomingBody
from app.uploads import service
from app.uploads.schemas import (
    PART_FORM_SCHEMA,
    UploadComplete,
    UploadCreate,
    UploadPartPublic,
    UploadPublic,
)

router = APIRouter(tags=["uploads"])


@router.post("/v1/uploads", response_model=UploadPublic)
def create_upload(tenant: CurrentTenant, session: SessionDep, body: UploadCreate) -> UploadPublic:
    return UploadPublic.of(service.create(session, tenant, body))


# The part's bytes are streamed into storage by the service, not parsed by FastAPI.
@router.post(
    "/v1/uploads/{upload_id}/parts",
    response_model=UploadPartPublic,
    openapi_extra=PART_FORM_SCHEMA,
)
async def add_upload_part(
    tenant: CurrentTenant, session: SessionDep, upload_id: str, request: Request
) -> UploadPartPublic:
    part = await service.add_part(session, tenant, upload_id, IncomingBody.of(request))
    return UploadPartPublic.of(part)


@router.post("/v1/uploads/{upload_id}/complete", response_model=UploadPublic)
def complete_upload(
    tenant: CurrentTenant, session: SessionDep, upload_id: str, body: UploadComplete
) -> UploadPublic:
    return UploadPublic.of(*service.complete(session, tenant, upload_id, body))


@router.post("/v1/uploads/{upload_id}/cancel", response_model=UploadPublic)
def cancel_upload(tenant: CurrentTenant, session: SessionDep, upload_id: str) -> UploadPublic:
    return UploadPublic.of(service.cancel(session, tenant, upload_id))
