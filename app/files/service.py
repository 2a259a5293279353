"""File rules: what may be uploaded, when the record appears, what may be deleted."""

import unicodedata
from collections.abc import Iterator
from pathlib import PurePath

import anyio
from sqlalchemy.orm import Session

from app.config import get_settings
from app.errors import Conflict, InvalidRequest, NotFound, PayloadTooLarge
from app.files import repository
from app.files.multipart import IncomingBody, receive_form
from app.files.schemas import UPLOAD_PURPOSES
from app.kit.ids import new_id
from app.kit.queue import CPU_QUEUE, enqueue_after_commit
from app.kit.storage import StorageLimitExceeded, StoredBlob, delete_after_commit, get_storage
from app.models import File, Tenant

VALIDATE_TASK = "worker.tasks.datasets.validate_file"


# Control characters (NUL, line breaks), invisible format characters (the right-to-left
# override that makes "evil\u202egpj.exe" display as "evilexe.jpg"), line/paragraph
# separators and lone surrogates: none belongs in a file name shown to people.
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def clean_filename(name: str | None) -> str:
    """The name a file is listed under: its last path component only (`../../etc/passwd` is
    `passwd`, Windows separators included), without unsafe characters, at most 255
    characters. It is data only: storage keys are built from ids, never from the name."""
    visible = "".join(c for c in name or "" if unicodedata.category(c) not in _UNSAFE_CATEGORIES)
    base = PurePath(visible.replace("\\", "/")).name.strip()
    return (base if base.strip(".") else "upload.jsonl")[:255]


def check_purpose(purpose: str | None) -> str:
    if purpose is None:
        raise InvalidRequest("Missing form field 'purpose'.", param="purpose", code="invalid_value")
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequest(
            f"Invalid purpose '{purpose}'. Expected one of: {', '.join(UPLOAD_PURPOSES)}.",
            param="purpose",
            code="invalid_purpose",
        )
    return purpose


def _check_field(name: str, value: str) -> None:
    if name == "purpose":
        check_purpose(value)


def release_connection(session: Session) -> None:
    """End the request's read-only transaction (the API-key lookup) before a long body
    streams in, so no pooled connection sits idle in a transaction for the whole upload.
    Nothing has been written yet; the request still owns the commit of what follows."""
    session.commit()


def file_key(tenant_id: str, file_id: str) -> str:
    return f"files/{tenant_id}/{file_id}"


async def upload(session: Session, tenant: Tenant, body: IncomingBody) -> File:
    """`POST /v1/files`: stream the multipart body's `file` part into storage (hashing as it
    goes); the row is written only once the bytes are safely stored."""
    max_bytes = get_settings().max_upload_bytes
    file_id = new_id("file")
    key = file_key(tenant.id, file_id)
    release_connection(session)
    with get_storage().writer(key, max_bytes) as writer:
        try:
            form = await receive_form(body, "file", writer, on_field=_check_field)
        except StorageLimitExceeded:
            raise PayloadTooLarge(
                f"File is larger than the {max_bytes}-byte limit.", param="file"
            ) from None
        purpose = check_purpose(form.fields.get("purpose"))
        if not form.has_file:
            raise InvalidRequest("Missing form field 'file'.", param="file", code="invalid_value")
        if writer.size == 0:
            raise InvalidRequest("File is empty.", param="file", code="empty_file")
        blob = await anyio.to_thread.run_sync(writer.commit)
    return create_from_blob(session, tenant, file_id, blob, form.filename, purpose)


def create_from_blob(
    session: Session,
    tenant: Tenant,
    file_id: str,
    blob: StoredBlob,
    filename: str | None,
    purpose: str,
) -> File:
    """Record bytes already stored under `file_key(tenant, file_id)` as a file and queue
    their validation. If the row cannot be written, the blob goes too."""
    file = File(
        id=file_id,
        tenant_id=tenant.id,
        filename=clean_filename(filename),
        purpose=purpose,
        bytes=blob.size,
        sha256=blob.sha256,
        storage_key=blob.key,
    )
    try:
        repository.add(session, file)
    except BaseException:
        get_storage().delete(blob.key)
        raise
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
    delete_after_commit(session, file.storage_key)
