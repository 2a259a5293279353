"""SQLAlchemy tables, one file per table. Importing this package registers them all."""

from app.models.adapter import Adapter
from app.models.adapter_export import AdapterExport
from app.models.alias import Alias
from app.models.alias_event import AliasEvent
from app.models.api_key import ApiKey
from app.models.audit_event import AuditEvent
from app.models.completion_record import CompletionRecord
from app.models.decision_report import DecisionReport
from app.models.eval_run import EvalRun
from app.models.eval_run_row import EvalRunRow
from app.models.feedback import Feedback
from app.models.file import File
from app.models.job import FineTuningJob
from app.models.job_checkpoint import JobCheckpoint
from app.models.job_event import JobEvent
from app.models.rate_limit import RateLimit
from app.models.tenant import Tenant
from app.models.upload import Upload
from app.models.upload_part import UploadPart
from app.models.usage_daily import UsageDaily

__all__ = [
    "Adapter",
    "AdapterExport",
    "Alias",
    "AliasEvent",
    "ApiKey",
    "AuditEvent",
    "CompletionRecord",
    "DecisionReport",
    "EvalRun",
    "EvalRunRow",
    "Feedback",
    "File",
    "FineTuningJob",
    "JobCheckpoint",
    "JobEvent",
    "RateLimit",
    "Tenant",
    "Upload",
    "UploadPart",
    "UsageDaily",
]
