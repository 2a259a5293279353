"""`loraplex` command line: operator tasks that do not belong behind the HTTP API."""

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from app.config import ROOT

cli = typer.Typer(help="Loraplex: fine-tuning as a service.", no_args_is_help=True)
tenants_cli = typer.Typer(help="Tenants and their API keys.", no_args_is_help=True)
models_cli = typer.Typer(help="Base models in the catalog.", no_args_is_help=True)
db_cli = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
cli.add_typer(tenants_cli, name="tenants")
cli.add_typer(models_cli, name="models")
cli.add_typer(db_cli, name="db")


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


@cli.command("up")
def up() -> None:
    """Migrate, then run vLLM, the workers and the API until Ctrl-C."""
    from alembic import command

    from app.config import get_settings
    from app.stack import Stack

    settings = get_settings()
    command.upgrade(alembic_config(), "head")
    stack = Stack(settings)
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


def main() -> None:
    cli()
