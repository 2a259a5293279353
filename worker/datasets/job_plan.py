"""What a job will train on, decided when its files are validated: the rows kept (after
`drop_invalid` / `dedup`), their sha256, and token counts with the job's own base model,
chat template and max_seq_length — the file's report counts with the default model and
settings, which may not be the job's."""

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.catalog.catalog import get_base_model
from app.kit.storage import get_storage
from app.models import File, FineTuningJob
from worker.datasets.estimate import training_estimate
from worker.datasets.prepare import prepare_dataset
from worker.datasets.report import ReportOptions, build_report

TOKEN_KEYS = (
    "tokenizer",
    "chat_template_sha256",
    "max_seq_length",
    "counted_rows",
    "min",
    "p50",
    "p95",
    "max",
    "total",
    "trainable",
    "truncated_rows",
    "truncated_lines",
    "tokens_after_truncation",
)


def job_hyperparameters(job: FineTuningJob) -> dict[str, Any]:
    method = job.method
    return dict(method[method["type"]]["hyperparameters"])


def prepared_key(job_id: str, name: str) -> str:
    return f"jobs/{job_id}/{name}.prepared.jsonl"


def plan_job_data(session: Session, job: FineTuningJob) -> dict[str, Any]:
    """Raises ValueError (NothingLeftToTrain included) when the data cannot train."""
    options = job.data_options or {}
    drop_invalid = bool(options.get("drop_invalid"))
    dedup = bool(options.get("dedup"))
    hp = job_hyperparameters(job)
    training = _file(session, job.training_file)
    storage = get_storage()
    plan: dict[str, Any] = {
        "drop_invalid": drop_invalid,
        "dedup": dedup,
        "dataset_sha256": training.sha256,
        "final_dataset_sha256": training.sha256,
    }
    path = Path(storage.path(training.storage_key))
    if drop_invalid or dedup:
        key = prepared_key(job.id, "training")
        prepared = prepare_dataset(
            path, Path(storage.path(key)), drop_invalid=drop_invalid, dedup=dedup
        )
        plan.update(prepared.to_dict(), storage_key=key, final_dataset_sha256=prepared.sha256)
        path = Path(storage.path(key))
    if job.validation_file and drop_invalid:
        validation = _file(session, job.validation_file)
        if (validation.report or {}).get("error_count"):
            key = prepared_key(job.id, "validation")
            kept = prepare_dataset(
                Path(storage.path(validation.storage_key)),
                Path(storage.path(key)),
                drop_invalid=True,
                dedup=False,
            )
            plan["validation"] = {
                "storage_key": key,
                "rows_kept": kept.rows_kept,
                "dropped_invalid": kept.dropped_invalid,
                "final_sha256": kept.sha256,
            }
    plan["tokens"] = _token_counts(training, path, job.model, hp)
    tokens = plan["tokens"]
    plan["estimate"] = (
        training_estimate(tokens["tokens_after_truncation"], tokens["trainable"], hp["n_epochs"])
        if tokens and "tokens_after_truncation" in tokens
        else None
    )
    return plan


def _token_counts(
    training: File, path: Path, model_id: str, hp: dict[str, Any]
) -> dict[str, Any] | None:
    counted = (training.report or {}).get("tokens") or {}
    reusable = (
        Path(get_storage().path(training.storage_key)) == path
        and counted.get("tokenizer") == model_id
        and counted.get("max_seq_length") == hp["max_seq_length"]
    )
    if not reusable:
        entry = get_base_model(model_id)
        if entry is None or not (entry.local_path / "tokenizer.json").exists():
            return None
        options = ReportOptions(
            tokenizer_dir=entry.local_path,
            tokenizer_name=model_id,
            max_seq_length=hp["max_seq_length"],
            n_epochs=hp["n_epochs"],
        )
        counted = build_report(path, options).to_dict()["tokens"] or {}
    return {key: counted[key] for key in TOKEN_KEYS if key in counted}


def _file(session: Session, file_id: str) -> File:
    file = session.get(File, file_id)
    if file is None:
        raise ValueError(f"file '{file_id}' no longer exists")
    return file


def summary(plan: dict[str, Any]) -> str:
    parts = []
    if plan.get("drop_invalid") or plan.get("dedup"):
        parts.append(
            f"Training on {plan['rows_kept']} of {plan['rows_in']} rows "
            f"({plan['dropped_invalid']} invalid, {plan['dropped_duplicates']} exact duplicate "
            f"row(s) dropped; sha256 {plan['final_dataset_sha256'][:12]}…)."
        )
    tokens = plan.get("tokens") or {}
    if tokens.get("truncated_rows"):
        parts.append(
            f"{tokens['truncated_rows']} row(s) are longer than max_seq_length "
            f"{tokens['max_seq_length']} with {tokens['tokenizer']}'s chat template and will be "
            "truncated."
        )
    estimate = plan.get("estimate")
    if estimate:
        parts.append(
            f"Estimated {estimate['total_training_tokens']} training tokens, about "
            f"{estimate['expected_duration']} on {estimate['worker_class']}."
        )
    return " ".join(parts)
