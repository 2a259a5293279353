"""File rules: what may be uploaded, when the record appears, what may be deleted."""

from collections.abc import AsyncIterator, Iterator
from pathlib import PurePath

from sqlalchemy.orm import Session

from app.config import get_settings
from app.errors import Conflict, InvalidRequest, NotFound, PayloadTooLarge
from app.files import repository
from app.files.schemas import UPLOAD_PURPOSES
from app.kit.ids import new_id
from app.kit.queue import CPU_QUEUE, enqueue_after_commit
from app.kit.storage import StorageLimitExceeded, get_storage
from app.models import File, Tenant

VALIDATE_TASK = "worker.tasks.datasets.validate_file"


def _clean_filename(name: str | None) -> str:
    base = PurePath((name or "").replace("\\", "/")).name.strip()
    return (base or "upload.jsonl")[:255]


async def upload(
    session: Session,
    tenant: Tenant,
    filename: str | None,
    purpose: str,
    chunks: AsyncIterator[bytes],
) -> File:
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest(
            f"Invalid purpose '{purpose}'. Expected one of: {', '.join(UPLOAD_PURPOSES)}.",
            param="purpose",
            code="invalid_purpose",
        )
    file_id = new_id("file")
    key = f"files/{tenant.id}/{file_id}"
    max_bytes = get_settings().max_upload_bytes
    try:
        blob = await get_storage().put_stream(key, chunks, max_bytes)
    except StorageLimitExceeded:
        raise PayloadTooLarge(
            f"File is larger than the {max_bytes}-byte limit.", param="file"
        ) from None
    if blob.size == 0:
        get_storage().delete(key)
        raise InvalidRequest("File is empty.", param="file", code="empty_file")
    # The row is written only once the bytes are safely stored.
    file = File(
        id=file_id,
        tenant_id=tenant.id,
        filename=_clean_filename(filename),
        purpose=purpose,
        bytes=blob.size,
        sha256=blob.sha256,
        storage_key=key,
    )
    repository.add(session, file)
    enqueue_after_commit(session, VALIDATE_TASK, [file.id], CPU_QUEUE)
    return file


def get(session: Session, tenant: Tenant, file_id: str, param: str = "file_id") -> File:
    file = repository.get(session, tenant.id, file_id)
    if file is None:
        raise NotFound(f"No such file: '{file_id}'.", param=param, code="file_not_found")
    return file


def content(session: Session, tenant: Tenant, file_id: str) -> tuple[File, Iterator[bytes]]:
    file = get(session, tenant, file_id)
    return file, get_storage().iter_bytes(file.storage_key)


def delete(session: Session, tenant: Tenant, file_id: str) -> None:
    file = get(session, tenant, file_id)
    if repository.used_by_active_job(session, tenant.id, file_id):
        raise Conflict(
            f"File '{file_id}' is used by a fine-tuning job that has not finished; cancel it "
            "first.",
            param="file_id",
            code="file_in_use",
        )
    repository.delete(session, file)
    session.flush()
    get_storage().delete(file.storage_key)
