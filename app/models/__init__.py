"""SQLAlchemy tables, one file per table. Importing this package registers them all."""

from app.models.adapter import Adapter
from app.models.api_key import ApiKey
from app.models.file import File
from app.models.job import FineTuningJob
from app.models.job_checkpoint import JobCheckpoint
from app.models.job_event import JobEvent
from app.models.tenant import Tenant

__all__ = ["Adapter", "ApiKey", "File", "FineTuningJob", "JobCheckpoint", "JobEvent", "Tenant"]
