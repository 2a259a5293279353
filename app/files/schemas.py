from typing import Any, Literal

from pydantic import BaseModel

from app.models import File

UPLOAD_PURPOSES = ("fine-tune", "evals")


def multipart_schema(
    file_field: str, fields: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """`openapi_extra` for a route that streams its multipart body itself."""
    properties = {file_field: {"type": "string", "format": "binary"}, **(fields or {})}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": properties,
                        "required": list(properties),
                    }
                }
            },
        }
    }


UPLOAD_FORM_SCHEMA = multipart_schema(
    "file", {"purpose": {"type": "string", "enum": list(UPLOAD_PURPOSES)}}
)


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
