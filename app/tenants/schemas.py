from pydantic import BaseModel


class TenantPublic(BaseModel):
    object: str = "tenant"
    id: str
    name: str
    created_at: int
