"""Upload rules (OpenAI's Uploads API): a big file arrives as parts of at most 64 MB, each
stored as its own blob; completing assembles them, in the order the client names, into one
file. An upload leaves `pending` exactly once — completed, cancelled or expired (an hour after
creation) — through a compare-and-set, and its parts are deleted when it does."""

import anyio
from sqlalchemy.orm import Session

from app.config import get_settings
from app.errors import Conflict, InvalidRequest, NotFound, PayloadTooLarge
from app.files import service as files_service
from app.files.multipart import IncomingBody, receive_form
from app.kit.ids import new_id, now
from app.kit.storage import StorageLimitExceeded, delete_after_commit, get_storage
from app.models import File, Tenant, Upload, UploadPart
from app.uploads import repository
from app.uploads.schemas import UploadComplete, UploadCreate

UPLOAD_TTL_SECONDS = 3600
MAX_PART_BYTES = 64 * 1024 * 1024


def parts_key(tenant_id: str, upload_id: str) -> str:
    return f"uploads/{tenant_id}/{upload_id}"


def create(session: Session, tenant: Tenant, body: UploadCreate) -> Upload:
    files_service.check_purpose(body.purpose)
    max_bytes = get_settings().max_upload_bytes
    if body.bytes > max_bytes:
        raise PayloadTooLarge(
            f"An upload can hold at most {max_bytes} bytes; {body.bytes} were declared.",
            param="bytes",
        )
    created = now()
    upload = Upload(
        id=new_id("upload"),
        tenant_id=tenant.id,
        filename=files_service.clean_filename(body.filename),
        purpose=body.purpose,
        bytes=body.bytes,
        mime_type=body.mime_type,
        status="pending",
        created_at=created,
        expires_at=created + UPLOAD_TTL_SECONDS,
    )
    repository.add(session, upload)
    return upload


def get(session: Session, tenant: Tenant, upload_id: str) -> Upload:
    upload = repository.get(session, tenant.id, upload_id)
    if upload is None:
        raise NotFound(
            f"No such upload: '{upload_id}'.", param="upload_id", code="upload_not_found"
        )
    return upload


def _get_pending(session: Session, tenant: Tenant, upload_id: str) -> Upload:
    upload = get(session, tenant, upload_id)
    _refuse_unless_pending(session, upload)
    return upload


def _refuse_unless_pending(session: Session, upload: Upload) -> None:
    """Raise the error for an upload that can no longer take parts, be completed or be
    cancelled. One found past its expiry is expired on the spot, and that is committed
    whatever becomes of this request, as the periodic sweep would have done."""
    upload_id, tenant_id, status = upload.id, upload.tenant_id, upload.status
    if status == "pending" and upload.expires_at <= now():
        session.rollback()
        _expire(session, upload_id, tenant_id, now())
        session.commit()
        session.refresh(upload)  # "expired", unless a racing complete or cancel got there first
        status = upload.status
    if status == "expired":
        raise InvalidRequest(
            f"Upload '{upload_id}' has expired (uploads expire {UPLOAD_TTL_SECONDS // 60} "
            "minutes after they are created) and its parts were deleted; create a new upload.",
            param="upload_id",
            code="upload_expired",
        )
    if status != "pending":
        raise InvalidRequest(
            f"Upload '{upload_id}' is already {status}.",
            param="upload_id",
            code="upload_not_pending",
        )


def _lost_race(session: Session, upload: Upload) -> Conflict:
    """The upload changed under this request (a racing complete, cancel or expiry won): raise
    what that state calls for."""
    session.refresh(upload)
    _refuse_unless_pending(session, upload)
    return Conflict(f"Upload '{upload.id}' changed while this request ran; retry.")


async def add_part(
    session: Session, tenant: Tenant, upload_id: str, body: IncomingBody
) -> UploadPart:
    upload = _get_pending(session, tenant, upload_id)
    part_id = new_id("part")
    key = f"{parts_key(tenant.id, upload.id)}/{part_id}"
    files_service.release_connection(session)
    with get_storage().writer(key, MAX_PART_BYTES) as writer:
        try:
            form = await receive_form(body, "data", writer)
        except StorageLimitExceeded:
            raise PayloadTooLarge(
                f"A part can hold at most {MAX_PART_BYTES} bytes.",
                param="data",
                code="part_too_large",
            ) from None
        if not form.has_file:
            raise InvalidRequest("Missing form field 'data'.", param="data", code="invalid_value")
        if writer.size == 0:
            raise InvalidRequest("Part is empty.", param="data", code="empty_part")
        try:
            blob = await anyio.to_thread.run_sync(writer.commit)
        except FileNotFoundError:  # a cancel or expiry removed the upload's folder meanwhile
            raise _lost_race(session, upload) from None
    try:
        # Locks the upload row until this request commits: a racing complete, cancel or
        # expiry either happened first (the part is refused) or waits and then sees the part.
        if not repository.compare_and_set_status(
            session, upload.id, ["pending"], "pending", live_at=now()
        ):
            raise _lost_race(session, upload)
        part = UploadPart(
            id=part_id,
            upload_id=upload.id,
            tenant_id=tenant.id,
            bytes=blob.size,
            sha256=blob.sha256,
            storage_key=key,
        )
        repository.add(session, part)
    except BaseException:
        get_storage().delete(key)
        raise
    return part


def _ordered_parts(
    session: Session, tenant: Tenant, upload: Upload, part_ids: list[str]
) -> list[UploadPart]:
    if len(set(part_ids)) != len(part_ids):
        raise InvalidRequest("part_ids lists a part more than once.", param="part_ids")
    found = repository.parts_by_id(session, tenant.id, upload.id, part_ids)
    missing = [p for p in part_ids if p not in found]
    if missing:
        raise InvalidRequest(
            f"Upload '{upload.id}' has no part {', '.join(repr(p) for p in missing)}.",
            param="part_ids",
            code="part_not_found",
        )
    parts = [found[p] for p in part_ids]
    total = sum(p.bytes for p in parts)
    if total != upload.bytes:
        raise InvalidRequest(
            f"The parts add up to {total} bytes, but the upload was created with "
            f"bytes={upload.bytes}.",
            param="part_ids",
            code="upload_bytes_mismatch",
        )
    return parts


def complete(
    session: Session, tenant: Tenant, upload_id: str, body: UploadComplete
) -> tuple[Upload, File]:
    """Assemble the parts (streaming, hashed on the way) into a new file, then move the
    upload to `completed` by compare-and-set: of two racing completes one wins, the other's
    assembled copy is thrown away. A failed check (size, md5) leaves the upload pending."""
    upload = _get_pending(session, tenant, upload_id)
    parts = _ordered_parts(session, tenant, upload, body.part_ids)
    file_id = new_id("file")
    storage = get_storage()
    files_service.release_connection(session)
    with storage.writer(
        files_service.file_key(tenant.id, file_id), upload.bytes, md5=body.md5 is not None
    ) as writer:
        try:
            for part in parts:
                for chunk in storage.iter_bytes(part.storage_key):
                    writer.write(chunk)
        except (FileNotFoundError, StorageLimitExceeded):  # the parts went or changed meanwhile
            raise _lost_race(session, upload) from None
        if body.md5 is not None and writer.md5 != body.md5:
            raise InvalidRequest(
                f"md5 mismatch: the assembled file's md5 is {writer.md5}, not {body.md5}. "
                "The upload is still pending.",
                param="md5",
                code="md5_mismatch",
            )
        if not repository.compare_and_set_status(session, upload.id, ["pending"], "completed"):
            raise _lost_race(session, upload)
        blob = writer.commit()
    file = files_service.create_from_blob(
        session, tenant, file_id, blob, upload.filename, upload.purpose
    )
    session.refresh(upload)
    upload.file_id = file.id
    _discard_parts(session, upload.tenant_id, upload.id)
    return upload, file


def cancel(session: Session, tenant: Tenant, upload_id: str) -> Upload:
    upload = _get_pending(session, tenant, upload_id)
    if not repository.compare_and_set_status(session, upload.id, ["pending"], "cancelled"):
        raise _lost_race(session, upload)
    _discard_parts(session, upload.tenant_id, upload.id)
    session.refresh(upload)
    return upload


def _discard_parts(session: Session, tenant_id: str, upload_id: str) -> None:
    repository.delete_parts(session, upload_id)
    session.flush()
    delete_after_commit(session, parts_key(tenant_id, upload_id))


def _expire(session: Session, upload_id: str, tenant_id: str, at: int) -> bool:
    if not repository.compare_and_set_status(
        session, upload_id, ["pending"], "expired", expiring_by=at
    ):
        return False
    _discard_parts(session, tenant_id, upload_id)
    return True


def expire_stale_uploads(session: Session) -> int:
    """Expire every pending upload past its `expires_at` and delete its parts; returns how
    many. For a periodic task or `loraplex uploads expire`: the rows change in the caller's
    transaction and the part blobs are deleted once it commits."""
    at, expired = now(), 0
    while batch := repository.stale_pending(session, at):
        won = sum(_expire(session, upload_id, tenant_id, at) for upload_id, tenant_id in batch)
        if not won:
            break
        expired += won
    return expired
