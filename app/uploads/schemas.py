from typing import Literal

from pydantic import BaseModel, Field, field_validator

from app.files.schemas import FilePublic, multipart_schema
from app.models import File, Upload, UploadPart

PART_FORM_SCHEMA = multipart_schema("data")


class UploadCreate(BaseModel):
    filename: str = Field(min_length=1, max_length=1024)
    purpose: str
    bytes: int = Field(gt=0)
    mime_type: str = Field(min_length=1, max_length=255)


class UploadComplete(BaseModel):
    part_ids: list[str] = Field(min_length=1)
    md5: str | None = None

    @field_validator("md5")
    @classmethod
    def _hex_md5(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.strip().lower()
        if len(value) != 32 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("md5 must be 32 hexadecimal characters")
        return value


class UploadPublic(BaseModel):
    id: str
    object: Literal["upload"] = "upload"
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    purpose: str
    status: Literal["pending", "completed", "cancelled", "expired"]
    file: FilePublic | None = None

    @classmethod
    def of(cls, u: Upload, file: File | None = None) -> "UploadPublic":
        return cls(
            id=u.id,
            bytes=u.bytes,
            created_at=u.created_at,
            expires_at=u.expires_at,
            filename=u.filename,
            purpose=u.purpose,
            status=u.status,  # type: ignore[arg-type]
            file=FilePublic.of(file) if file is not None else None,
        )


class UploadPartPublic(BaseModel):
    id: str
    object: Literal["upload.part"] = "upload.part"
    created_at: int
    upload_id: str

    @classmethod
    def of(cls, p: UploadPart) -> "UploadPartPublic":
        return cls(id=p.id, created_at=p.created_at, upload_id=p.upload_id)
