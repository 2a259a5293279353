from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.auth.dependencies import CurrentTenant, SessionDep
from app.files import repository, service
from app.files.multipart import IncomingBody
from app.files.schemas import UPLOAD_FORM_SCHEMA, FileDeleted, FilePublic, FileReport
from app.kit.pagination import ListPage

router = APIRouter(tags=["files"])


# The body is read by the service as a stream (not by FastAPI's form parsing), so its shape
# is declared for the OpenAPI schema only.
@router.post("/v1/files", response_model=FilePublic, openapi_extra=UPLOAD_FORM_SCHEMA)
async def upload_file(tenant: CurrentTenant, session: SessionDep, request: Request) -> FilePublic:
    return FilePublic.of(await service.upload(session, tenant, IncomingBody.of(request)))


@router.get("/v1/files", response_model=ListPage[FilePublic])
def list_files(
    tenant: CurrentTenant,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
    purpose: str | None = None,
    order: Literal["asc", "desc"] = "desc",
) -> ListPage[FilePublic]:
    rows, has_more = repository.page(
        session, tenant.id, after, limit, purpose, descending=order == "desc"
    )
    data = [FilePublic.of(f) for f in rows]
    return ListPage(
        data=data,
        has_more=has_more,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )


@router.get("/v1/files/{file_id}", response_model=FilePublic)
def retrieve_file(tenant: CurrentTenant, session: SessionDep, file_id: str) -> FilePublic:
    return FilePublic.of(service.get(session, tenant, file_id))


@router.get("/v1/files/{file_id}/content")
def file_content(tenant: CurrentTenant, session: SessionDep, file_id: str) -> StreamingResponse:
    file, body = service.content(session, tenant, file_id)
    return StreamingResponse(
        body,
        media_type="application/octet-stream",
        headers={"Content-Disposition": content_disposition(file.filename)},
    )


def content_disposition(filename: str) -> str:
    """An attachment header for any stored name (RFC 6266): an ASCII-only `filename` for old
    clients and the exact name, percent-encoded, in `filename*`. A header value must be
    Latin-1 and free of quotes and line breaks, or the name would break (or inject into) the
    response's headers."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/v1/files/{file_id}/report", response_model=FileReport)
def file_report(tenant: CurrentTenant, session: SessionDep, file_id: str) -> FileReport:
    file = service.get(session, tenant, file_id)
    return FileReport(file_id=file.id, status=file.status, report=file.report)


@router.delete("/v1/files/{file_id}", response_model=FileDeleted)
def delete_file(tenant: CurrentTenant, session: SessionDep, file_id: str) -> FileDeleted:
    service.delete(session, tenant, file_id)
    return FileDeleted(id=file_id)
