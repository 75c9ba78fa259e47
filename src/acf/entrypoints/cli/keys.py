"""``acf keys``: tenants' API keys (only their hashes are stored)."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from acf.entrypoints.cli.common import DataDir, app

keys_app = typer.Typer(no_args_is_help=True, help="Tenants' API keys for the HTTP API.")
app.add_typer(keys_app, name="keys")
Tenant = Annotated[str, typer.Option("--tenant", help="The tenant the key acts for.")]


def _keys(data_dir: Path) -> object:
    """The key table, migrated first (unless a running acf holds the file: it migrated)."""
    from acf.adapters.sql import migrate
    from acf.adapters.sqlite.api_keys import SqliteApiKeys
    from acf.adapters.sqlite.database import DatabaseInUse, lock_database, unlock_database
    from acf.adapters.sqlite.store import sqlite_url
    from acf.bootstrap import database_path

    path = database_path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = lock_database(path)
    except DatabaseInUse:
        pass  # `acf serve` has it open, at the head revision
    else:
        try:
            migrate.upgrade(sqlite_url(path))
        finally:
            unlock_database(fd)
    return SqliteApiKeys(path)


@keys_app.command("create")
def create(
    tenant: Tenant,
    name: Annotated[str, typer.Option("--name", help="What the key is for.")] = "api",
    data_dir: DataDir = Path("data"),
) -> None:
    """Create a key and print it once: it cannot be shown again."""
    from acf.adapters.memory.clock import SystemClock
    from acf.adapters.sqlite.api_keys import SqliteApiKeys
    from acf.ports.api_keys import new_api_key

    keys = _keys(data_dir)
    assert isinstance(keys, SqliteApiKeys)
    key = new_api_key()
    record = asyncio.run(keys.create(tenant, name, key, SystemClock().now_ms()))
    typer.echo(key)
    typer.echo(
        f"key {record.key_id} for tenant {tenant}; store it now, it is not shown again", err=True
    )


@keys_app.command("list")
def list_keys(tenant: Tenant, data_dir: DataDir = Path("data")) -> None:
    """The tenant's keys (ids and names, never the keys)."""
    from acf.adapters.sqlite.api_keys import SqliteApiKeys

    keys = _keys(data_dir)
    assert isinstance(keys, SqliteApiKeys)
    for r in asyncio.run(keys.list_keys(tenant)):
        state = "active" if r.active else "revoked"
        typer.echo(f"{r.key_id}\t{r.name}\t{state}\t{r.created_at_ms}")


@keys_app.command("revoke")
def revoke(
    tenant: Tenant,
    key_id: Annotated[str, typer.Argument(help="The key's id (from `acf keys list`).")],
    data_dir: DataDir = Path("data"),
) -> None:
    """Revoke a key: it authenticates nothing from now on."""
    from acf.adapters.memory.clock import SystemClock
    from acf.adapters.sqlite.api_keys import SqliteApiKeys

    keys = _keys(data_dir)
    assert isinstance(keys, SqliteApiKeys)
    if not asyncio.run(keys.revoke(tenant, key_id, SystemClock().now_ms())):
        typer.echo(f"error: tenant {tenant} has no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")
