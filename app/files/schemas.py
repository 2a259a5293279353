from typing import Any, Literal

from pydantic import BaseModel

from app.models import File

UPLOAD_PURPOSES = ("fine-tune",)


class FilePublic(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str
    status_details: str | None = None
    expires_at: int | None = None
    sha256: str

    @classmethod
    def of(cls, f: File) -> "FilePublic":
        return cls(
            id=f.id,
            bytes=f.bytes,
            created_at=f.created_at,
            filename=f.filename,
            purpose=f.purpose,
            status=f.status,
            status_details=f.status_details,
            sha256=f.sha256,
        )


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class FileReport(BaseModel):
    object: Literal["file.report"] = "file.report"
    file_id: str
    status: str
    report: dict[str, Any] | None
