"""Build the data-quality report of a stored file and record it on the file's row."""

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.catalog.catalog import DEFAULT_MODEL_ID, get_base_model
from app.kit.storage import get_storage
from app.models import File
from worker.datasets.contamination import contamination_report
from worker.datasets.report import ReportOptions, build_report
from worker.datasets.validate import ValidationReport, check_purpose

__all__ = [
    "contamination_report",
    "job_contamination",
    "job_file_error",
    "report_options",
    "validate_stored_file",
]


def report_options(model_id: str = DEFAULT_MODEL_ID) -> ReportOptions:
    """Token counts use the base model's own tokenizer when it is on this machine."""
    model = get_base_model(model_id)
    tokenizer_dir = model.local_path if model else None
    if tokenizer_dir is None or not (tokenizer_dir / "tokenizer.json").exists():
        return ReportOptions()
    return ReportOptions(tokenizer_dir=tokenizer_dir, tokenizer_name=model_id)


def validate_stored_file(session: Session, file: File) -> ValidationReport:
    report = build_report(Path(get_storage().path(file.storage_key)), report_options())
    validation = report.validation
    check_purpose(validation, file.purpose)
    file.report = report.to_dict()
    if validation.error_count:
        file.status = "error"
        file.status_details = validation.first_error_summary()
    else:
        file.status = "processed"
        file.status_details = None
    session.flush()
    return validation


def job_file_error(
    session: Session, file_id: str, param: str, drop_invalid: bool = False
) -> dict[str, str] | None:
    """The job-level error for a training/validation file, or None when it is usable (with
    `drop_invalid`: when at least one row is valid). Uses the stored report, validating now if
    the upload's own task has not run yet."""
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
    if report.error_count == 0 or (drop_invalid and report.valid_rows > 0):
        return None
    kind = "Training" if param == "training_file" else "Validation"
    return {
        "code": f"invalid_{param}",
        "param": param,
        "message": f"{kind} file {file_id} is invalid: {report.first_error_summary()}",
    }


def stored_file_path(file: File) -> Path:
    """Where a file's bytes are, for `contamination_report(train, validation)`."""
    return Path(get_storage().path(file.storage_key))


def job_contamination(
    session: Session, training_file_id: str, validation_file_id: str
) -> dict[str, Any]:
    """Contamination of a job's validation file by its training file (see contamination.py)."""
    training = session.get(File, training_file_id)
    validation = session.get(File, validation_file_id)
    if training is None or validation is None:
        raise LookupError("training or validation file no longer exists")
    return contamination_report(stored_file_path(training), stored_file_path(validation))
