"""Validate a stored file and record the report on its row."""

from sqlalchemy.orm import Session

from app.kit.storage import get_storage
from app.models import File
from worker.datasets.validate import ValidationReport, validate_file


def validate_stored_file(session: Session, file: File) -> ValidationReport:
    report = validate_file(get_storage().path(file.storage_key))
    file.report = report.to_dict()
    if report.error_count:
        file.status = "error"
        file.status_details = report.first_error_summary()
    else:
        file.status = "processed"
        file.status_details = None
    session.flush()
    return report


def job_file_error(session: Session, file_id: str, param: str) -> dict[str, str] | None:
    """The job-level error for a training/validation file, or None when it is usable.
    Uses the stored report, validating now if the upload's own task has not run yet."""
    file = session.get(File, file_id)
    if file is None:
        return {
            "code": "file_not_found",
            "param": param,
            "message": f"File '{file_id}' no longer exists.",
        }
    report = (
        ValidationReport.from_dict(file.report)
        if file.report
        else validate_stored_file(session, file)
    )
    if report.error_count == 0:
        return None
    kind = "Training" if param == "training_file" else "Validation"
    return {
        "code": f"invalid_{param}",
        "param": param,
        "message": f"{kind} file {file_id} is invalid: {report.first_error_summary()}",
    }
