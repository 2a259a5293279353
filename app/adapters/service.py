"""Adapter versions a tenant owns, and whether one may be served."""

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.orm import Session

from app.adapters import repository
from app.adapters.bundle import write_zip
from app.adapters.schemas import AdapterExportCreate, AdapterPublic
from app.aliases import repository as aliases_repo
from app.audit import service as audit
from app.catalog.catalog import get_base_model
from app.errors import Conflict, NotFound
from app.evals import repository as evals_repo
from app.jobs import repository as jobs_repo
from app.kit.ids import new_id
from app.kit.queue import GPU_QUEUE, enqueue_after_commit
from app.kit.storage import delete_after_commit, get_storage
from app.kit.templates import served_chat_template_sha256
from app.models import Adapter, AdapterExport, Tenant

EXPORT_TASK = "worker.tasks.evals.export_adapter"


def get(session: Session, tenant_id: str, adapter_id: str, param: str = "adapter_id") -> Adapter:
    adapter = repository.get(session, tenant_id, adapter_id)
    if adapter is None:
        raise NotFound(f"No such adapter: '{adapter_id}'.", param=param, code="adapter_not_found")
    return adapter


def find(session: Session, tenant_id: str, ref: str) -> Adapter | None:
    """An adapter by id (`adapter-…`) or by its `ft:…` name, within the tenant."""
    return repository.get(session, tenant_id, ref) or repository.get_by_name(
        session, tenant_id, ref
    )


def check_servable(adapter: Adapter, param: str = "model") -> None:
    """Refuse an adapter that is not ready, or whose chat template differs from the one the
    serving base model uses: it would be prompted in a format it was not trained on."""
    if adapter.status != "ready":
        raise Conflict(
            f"Adapter '{adapter.name}' is {adapter.status}, not ready to serve.",
            param=param,
            code="adapter_not_ready",
        )
    entry = get_base_model(adapter.base_model)
    if entry is None:
        raise Conflict(
            f"Adapter '{adapter.name}' was trained on '{adapter.base_model}', which this "
            "platform no longer serves.",
            param=param,
            code="base_model_unavailable",
        )
    trained = (adapter.manifest or {}).get("chat_template_sha256")
    served = served_chat_template_sha256(entry.local_path)
    if trained and served and trained != served:
        raise Conflict(
            f"Adapter '{adapter.name}' was trained with a different chat template "
            f"(sha256 {trained[:12]}…) than the one '{adapter.base_model}' is served with "
            f"(sha256 {served[:12]}…); retrain it on the current base model.",
            param=param,
            code="chat_template_mismatch",
        )


def retrieve(session: Session, tenant: Tenant, adapter_id: str) -> AdapterPublic:
    """One adapter with its lineage and the aliases that point at it now."""
    adapter = get(session, tenant.id, adapter_id)
    job = jobs_repo.get(session, tenant.id, adapter.job_id) if adapter.job_id else None
    names = [
        a.name
        for a in aliases_repo.pointing_at(session, tenant.id, adapter.id)
        if a.adapter_id == adapter.id
    ]
    return AdapterPublic.of(adapter, job, names, with_lineage=True)


def delete(session: Session, tenant: Tenant, adapter_id: str) -> Adapter:
    """Refused while an alias points at the version (now, or as its rollback target); the
    weights go once the delete commits, the row stays for the records that name it."""
    adapter = get(session, tenant.id, adapter_id)
    users = aliases_repo.pointing_at(session, tenant.id, adapter.id)
    if users:
        names = ", ".join(a.name for a in users)
        raise Conflict(
            f"Adapter '{adapter.name}' is used by alias(es) {names} (as the target or the "
            "rollback target); repoint them first.",
            param="adapter_id",
            code="adapter_in_use",
        )
    repository.mark_deleted(session, adapter)
    delete_after_commit(session, adapter.storage_key)
    audit.record(
        session,
        tenant_id=tenant.id,
        action="adapter.delete",
        target_type="adapter",
        target_id=adapter.id,
        detail={"name": adapter.name},
    )
    return adapter


def download(session: Session, tenant: Tenant, adapter_id: str) -> tuple[str, Iterator[bytes]]:
    """(file name, zip bytes): the adapter's files, lineage.json and, when its job has a
    finished decision report, decision_report.json."""
    public = retrieve(session, tenant, adapter_id)
    adapter = get(session, tenant.id, adapter_id)
    extras = {"lineage.json": public.lineage.model_dump() if public.lineage else {}}
    if adapter.job_id:
        report = evals_repo.latest_report(session, tenant.id, adapter.job_id)
        if report is not None and report.status == "succeeded":
            extras["decision_report.json"] = {"id": report.id, **(report.report or {})}
    folder = Path(get_storage().path(adapter.storage_key))
    filename = adapter.name.replace(":", "_") + ".zip"
    return filename, write_zip(folder, extras)


def create_export(
    session: Session, tenant: Tenant, adapter_id: str, body: AdapterExportCreate
) -> AdapterExport:
    adapter = get(session, tenant.id, adapter_id)
    export = AdapterExport(
        id=new_id("export"), tenant_id=tenant.id, adapter_id=adapter.id, kind=body.kind
    )
    repository.add(session, export)
    enqueue_after_commit(session, EXPORT_TASK, [export.id], GPU_QUEUE)
    return export


def get_export(session: Session, tenant: Tenant, adapter_id: str, export_id: str) -> AdapterExport:
    export = repository.get_export(session, tenant.id, adapter_id, export_id)
    if export is None:
        raise NotFound(
            f"No such export: '{export_id}'.", param="export_id", code="export_not_found"
        )
    return export


def export_content(
    session: Session, tenant: Tenant, adapter_id: str, export_id: str
) -> tuple[str, Iterator[bytes]]:
    export = get_export(session, tenant, adapter_id, export_id)
    if export.status != "succeeded" or export.storage_key is None:
        raise Conflict(
            f"Export {export.id} is {export.status}; its file is there once it has succeeded.",
            param="export_id",
            code="export_not_ready",
        )
    return f"{export.id}.zip", get_storage().iter_bytes(export.storage_key)
