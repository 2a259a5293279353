from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from app.models import Adapter, AdapterExport, FineTuningJob


class Lineage(BaseModel):
    """What an adapter version was made from: the job, the exact dataset bytes and the exact
    base weights (their sha256 is the base model's revision)."""

    fine_tuning_job_id: str | None
    training_file: str | None
    validation_file: str | None
    dataset_sha256: str | None
    validation_sha256: str | None
    base_model_id: str
    base_model_revision: str | None
    chat_template_sha256: str | None
    seed: int | None
    hyperparameters: dict[str, Any] | None

    @classmethod
    def of(cls, a: Adapter, job: FineTuningJob | None) -> "Lineage":
        m = a.manifest or {}
        return cls(
            fine_tuning_job_id=a.job_id,
            training_file=job.training_file if job else None,
            validation_file=job.validation_file if job else None,
            dataset_sha256=m.get("dataset_sha256"),
            validation_sha256=m.get("validation_sha256"),
            base_model_id=m.get("base_model_id") or a.base_model,
            base_model_revision=m.get("base_weights_sha256"),
            chat_template_sha256=m.get("chat_template_sha256"),
            seed=m.get("seed"),
            hyperparameters=m.get("hyperparameters"),
        )


class AdapterPublic(BaseModel):
    """One adapter version. `name` is its `ft:…` model id; storage paths are never shown.
    `lineage` and `aliases` are filled in when one adapter is retrieved."""

    id: str
    object: Literal["adapter"] = "adapter"
    name: str
    base_model: str
    fine_tuning_job_id: str | None
    status: str
    created_at: int
    manifest: dict[str, Any]
    lineage: Lineage | None = None
    aliases: list[str] | None = None

    @classmethod
    def of(
        cls,
        a: Adapter,
        job: FineTuningJob | None = None,
        aliases: list[str] | None = None,
        with_lineage: bool = False,
    ) -> "AdapterPublic":
        return cls(
            id=a.id,
            name=a.name,
            base_model=a.base_model,
            fine_tuning_job_id=a.job_id,
            status=a.status,
            created_at=a.created_at,
            manifest=a.manifest,
            lineage=Lineage.of(a, job) if with_lineage else None,
            aliases=aliases,
        )


class AdapterDeleted(BaseModel):
    id: str
    object: Literal["adapter"] = "adapter"
    deleted: bool = True


class AdapterExportCreate(BaseModel):
    """`merged`: the adapter merged into the base weights (a full safetensors model);
    `adapter`: the adapter alone (peft safetensors + config + manifest)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["merged", "adapter"] = "merged"


class AdapterExportPublic(BaseModel):
    id: str
    object: Literal["adapter.export"] = "adapter.export"
    adapter_id: str
    kind: str
    status: str
    bytes: int | None
    sha256: str | None
    error: dict[str, Any] | None
    created_at: int
    finished_at: int | None

    @classmethod
    def of(cls, e: AdapterExport) -> "AdapterExportPublic":
        return cls(
            id=e.id,
            adapter_id=e.adapter_id,
            kind=e.kind,
            status=e.status,
            bytes=e.bytes,
            sha256=e.sha256,
            error=e.error,
            created_at=e.created_at,
            finished_at=e.finished_at,
        )
