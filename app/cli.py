"""`loraplex` command line: operator tasks that do not belong behind the HTTP API."""

import json
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.config import ROOT

if TYPE_CHECKING:
    from app.uploads.client import DatasetClient

cli = typer.Typer(help="Loraplex: fine-tuning as a service.", no_args_is_help=True)
tenants_cli = typer.Typer(help="Tenants and their API keys.", no_args_is_help=True)
models_cli = typer.Typer(help="Base models in the catalog.", no_args_is_help=True)
db_cli = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
datasets_cli = typer.Typer(
    help="Upload datasets and read their validation reports (over the HTTP API).",
    no_args_is_help=True,
)
uploads_cli = typer.Typer(help="Multipart uploads (the Uploads API).", no_args_is_help=True)
cli.add_typer(tenants_cli, name="tenants")
cli.add_typer(models_cli, name="models")
cli.add_typer(db_cli, name="db")
cli.add_typer(datasets_cli, name="datasets")
cli.add_typer(uploads_cli, name="uploads")

BaseUrlOption = Annotated[
    str,
    typer.Option(envvar="LORAPLEX_BASE_URL", help="The API's /v1 URL."),
]
ApiKeyOption = Annotated[
    str,
    typer.Option(envvar="LORAPLEX_API_KEY", help="A tenant API key (lpx-…)."),
]
PART_BYTES = 64 * 1024 * 1024  # the Uploads API's largest part
WaitOption = Annotated[
    float, typer.Option(help="Seconds to wait for validation to finish (0: do not wait).")
]


def alembic_config(url: str | None = None):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config(str(ROOT / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from alembic import command

    command.upgrade(alembic_config(), revision)


@db_cli.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` empties the schema)."""
    from alembic import command

    command.downgrade(alembic_config(), revision)


@tenants_cli.command("create")
def tenants_create(name: str) -> None:
    """Create tenant NAME and print its first API key (shown once) as JSON."""
    from app.db import session_scope
    from app.errors import LoraplexError
    from app.tenants.service import create_tenant

    try:
        with session_scope() as session:
            tenant, api_key = create_tenant(session, name)
    except LoraplexError as exc:
        typer.echo(json.dumps(exc.body()), err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"tenant_id": tenant.id, "name": tenant.name, "api_key": api_key}))


@tenants_cli.command("list")
def tenants_list() -> None:
    """List tenants as JSON lines."""
    from app.db import session_scope
    from app.tenants.repository import list_all

    with session_scope() as session:
        for t in list_all(session):
            typer.echo(json.dumps({"tenant_id": t.id, "name": t.name, "created_at": t.created_at}))


@tenants_cli.command("limits")
def tenants_limits(
    name: str,
    rpm: Annotated[int | None, typer.Option(min=1, help="Requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, help="Tokens per minute")] = None,
    default: Annotated[bool, typer.Option(help="Go back to the platform defaults")] = False,
) -> None:
    """Show or set tenant NAME's inference rate limits; prints the limits in force as JSON."""
    from app.db import session_scope
    from app.ratelimits import repository as ratelimits_repository
    from app.ratelimits import service as ratelimits
    from app.tenants.repository import get_by_name

    with session_scope() as session:
        tenant = get_by_name(session, name)
        if tenant is None:
            typer.echo(f"no tenant named {name!r}", err=True)
            raise typer.Exit(1)
        if default:
            limits = ratelimits.set_limits(session, tenant.id, None, None)
        elif rpm is not None or tpm is not None:
            current = ratelimits_repository.get(session, tenant.id)  # keep the other override
            limits = ratelimits.set_limits(
                session,
                tenant.id,
                rpm if rpm is not None else (current.requests_per_minute if current else None),
                tpm if tpm is not None else (current.tokens_per_minute if current else None),
            )
        else:
            limits = ratelimits.limits_for(session, tenant.id)
        typer.echo(
            json.dumps(
                {
                    "tenant": name,
                    "requests_per_minute": limits.requests_per_minute,
                    "tokens_per_minute": limits.tokens_per_minute,
                }
            )
        )


@models_cli.command("pull")
def models_pull(
    model_id: Annotated[
        str | None, typer.Argument(help="Catalog id (default: all pullable)")
    ] = None,
) -> None:
    """Fetch and convert catalog models into the models directory (once)."""
    from app.catalog.catalog import load_catalog
    from worker.models.pull import pull

    catalog = load_catalog()
    if model_id and model_id not in catalog:
        typer.echo(f"unknown model {model_id!r}; known: {', '.join(catalog)}", err=True)
        raise typer.Exit(1)
    for entry in [catalog[model_id]] if model_id else catalog.values():
        if entry.source is not None or model_id:
            pull(entry, log=typer.echo)


@models_cli.command("path")
def models_path(model_id: str) -> None:
    """Print the local directory of a catalog model."""
    from app.catalog.catalog import get_base_model

    entry = get_base_model(model_id)
    if entry is None:
        raise typer.Exit(1)
    typer.echo(str(Path(entry.local_path)))


@uploads_cli.command("expire")
def uploads_expire() -> None:
    """Expire pending uploads past their hour and delete their parts; prints the count."""
    from app.db import session_scope
    from app.uploads.service import expire_stale_uploads

    with session_scope() as session:
        expired = expire_stale_uploads(session)
    typer.echo(json.dumps({"expired": expired}))


def _show_report(
    client: "DatasetClient", file: dict[str, Any] | None, file_id: str, wait: float
) -> None:
    """Print the file's validation summary (waiting up to `wait` seconds for it) and exit 1
    when the file has errors, 2 when validation had not finished."""
    from rich.console import Console

    from app.files.summary import has_errors, print_summary

    console = Console()
    if wait > 0:
        with console.status(f"validating {file_id} …"):
            report = client.wait_for_report(file_id, timeout=wait)
    else:
        report = client.report(file_id)
    print_summary(console, file, report)
    if has_errors(report):
        raise typer.Exit(1)
    if report.get("status") not in ("processed", "error"):
        raise typer.Exit(2)


@datasets_cli.command("upload")
def datasets_upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    purpose: str = "fine-tune",
    base_url: BaseUrlOption = "http://127.0.0.1:8000/v1",
    api_key: ApiKeyOption = "",
    wait: WaitOption = 600,
    part_size: Annotated[int, typer.Option(hidden=True, min=1, max=PART_BYTES)] = PART_BYTES,
) -> None:
    """Upload FILE (JSONL or .jsonl.gz) with a progress bar, wait for validation and print its
    report. Files over 64 MB go through the Uploads API in parts. Exit code 1: the file has
    errors."""
    import httpx
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from app.uploads.client import ApiError, DatasetClient

    size = file.stat().st_size
    with DatasetClient(base_url, api_key, part_bytes=part_size) as client:
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
            ) as progress:
                parts = -(-size // part_size)
                label = f"{file.name}" + (f" ({parts} parts)" if parts > 1 else "")
                task = progress.add_task(label, total=size)
                uploaded = client.upload(
                    file, purpose, on_bytes=lambda n: progress.advance(task, n)
                )
            typer.echo(f"uploaded {uploaded['id']} ({uploaded['bytes']} bytes)")
            _show_report(client, uploaded, uploaded["id"], wait)
        except (ApiError, httpx.HTTPError, OSError) as exc:
            typer.echo(f"upload failed: {exc}", err=True)
            raise typer.Exit(1) from None


@datasets_cli.command("report")
def datasets_report(
    file_id: str,
    base_url: BaseUrlOption = "http://127.0.0.1:8000/v1",
    api_key: ApiKeyOption = "",
    wait: WaitOption = 0,
) -> None:
    """Print the validation report of FILE_ID. Exit code 1: the file has errors."""
    import httpx

    from app.uploads.client import ApiError, DatasetClient

    with DatasetClient(base_url, api_key) as client:
        try:
            _show_report(client, None, file_id, wait)
        except (ApiError, httpx.HTTPError) as exc:
            typer.echo(f"report failed: {exc}", err=True)
            raise typer.Exit(1) from None


def _raise_keyboard_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@cli.command("up")
def up() -> None:
    """Migrate, then run vLLM, the workers and the API until Ctrl-C."""
    from alembic import command

    from app.config import get_settings
    from app.stack import Stack

    settings = get_settings()
    command.upgrade(alembic_config(), "head")
    stack = Stack(settings)
    # Stop cleanly on SIGTERM too, and on SIGINT even when started in the background
    # (where the shell leaves SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        stack.start_vllm()
        stack.start_workers()
        stack.start_api()
        typer.echo(f"logs: {stack.log_dir}/  (waiting for vLLM to load the base model …)")
        stack.wait_ready()
        typer.echo(f"Loraplex is up: API and web UI at {stack.api_url}/  (Ctrl-C stops it)")
        typer.echo("Create a tenant and API key:  .venv/bin/loraplex tenants create my-team")
        while all(p.poll() is None for p in stack.processes.values()):
            time.sleep(1)
        dead = [n for n, p in stack.processes.items() if p.poll() is not None]
        typer.echo(f"stopping: {', '.join(dead)} exited; see {stack.log_dir}", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("stopping …")
    finally:
        stack.stop()


@cli.command("workers")
def workers_list() -> None:
    """List the live training workers and what they can serve, as JSON lines (read-only)."""
    from app.config import get_settings
    from app.kit.workers import live_workers, redis_client

    redis_url = get_settings().redis_url
    if not redis_url:
        typer.echo("the worker registry needs Redis: set REDIS_URL", err=True)
        raise typer.Exit(1)
    for entry in live_workers(redis_client(redis_url)):
        typer.echo(json.dumps(entry))


def main() -> None:
    cli()
