"""``acf keys``: tenants' API keys (only their hashes are stored)."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from acf.entrypoints.cli.common import DatabaseUrl, DataDir, app

T = TypeVar("T")

keys_app = typer.Typer(no_args_is_help=True, help="Tenants' API keys for the HTTP API.")
app.add_typer(keys_app, name="keys")
Tenant = Annotated[str, typer.Option("--tenant", help="The tenant the key acts for.")]
KeysConfig = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="ACF_CONFIG",
        help="The configuration file acf serves: the key's tenant must be one of its tenants. "
        "Default: the bundled demo configuration (tenant demo).",
    ),
]


def _check_tenant(tenant: str, config: Path | None) -> None:
    """Refuse a tenant the configuration does not have: its key would only ever get 401."""
    from acf.config.load import ConfigError, load_config
    from acf.entrypoints.cli.serve import demo_config_path

    path = config or demo_config_path()
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configured = sorted(loaded.config.tenants)
    if tenant not in configured:
        hint = "" if config else " (the bundled demo: pass --config with the file acf serves)"
        typer.echo(
            f"error: tenant {tenant!r} is not in {path}{hint}; "
            f"its tenants: {', '.join(configured)}",
            err=True,
        )
        raise typer.Exit(2)


def _sqlite_keys(data_dir: Path) -> object:
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


def _with_keys(data_dir: Path, database_url: str | None, use: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``use(keys)`` on the embedded file's key table, or PostgreSQL's."""

    async def on_sqlite() -> T:
        return await use(_sqlite_keys(data_dir))

    async def on_postgres() -> T:
        from acf.adapters.postgres.database import PgDatabase
        from acf.adapters.postgres.store import libpq_url
        from acf.adapters.sql.api_keys import SqlApiKeys

        assert database_url is not None
        db = PgDatabase(libpq_url(database_url), min_size=1, max_size=1, name="acf-keys")
        await db.open()
        try:
            return await use(SqlApiKeys(db))
        finally:
            await db.close()

    return asyncio.run(on_postgres() if database_url else on_sqlite())


@keys_app.command("create")
def create(
    tenant: Tenant,
    name: Annotated[str, typer.Option("--name", help="What the key is for.")] = "api",
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="api: the tenant's API; admin: also the configuration lifecycle "
            "(/v1/config, `acf config push|promote|canary|rollback`); operator: the inbox, "
            "handoffs and the block list (/v1/inbox, /v1/blocks), and the API's reads.",
        ),
    ] = "api",
    data_dir: DataDir = Path("data"),
    database_url: DatabaseUrl = None,
    config: KeysConfig = None,
) -> None:
    """Create a key for a tenant of the configuration and print it once: it cannot be
    shown again."""
    from acf.adapters.memory.clock import SystemClock
    from acf.ports.api_keys import KEY_SCOPES, new_api_key

    if scope not in KEY_SCOPES:
        typer.echo(
            f"error: --scope must be one of {', '.join(KEY_SCOPES)}, not {scope!r}", err=True
        )
        raise typer.Exit(2)
    _check_tenant(tenant, config)
    key = new_api_key()
    record = _with_keys(
        data_dir,
        database_url,
        lambda keys: keys.create(tenant, name, key, SystemClock().now_ms(), scope=scope),
    )
    typer.echo(key)
    typer.echo(
        f"key {record.key_id} ({scope}) for tenant {tenant}; store it now, it is not shown again",
        err=True,
    )


@keys_app.command("list")
def list_keys(
    tenant: Tenant, data_dir: DataDir = Path("data"), database_url: DatabaseUrl = None
) -> None:
    """The tenant's keys (id, name, state, created, scope; never the keys)."""
    for r in _with_keys(data_dir, database_url, lambda keys: keys.list_keys(tenant)):
        state = "active" if r.active else "revoked"
        typer.echo(f"{r.key_id}\t{r.name}\t{state}\t{r.created_at_ms}\t{r.scope}")


@keys_app.command("revoke")
def revoke(
    tenant: Tenant,
    key_id: Annotated[str, typer.Argument(help="The key's id (from `acf keys list`).")],
    data_dir: DataDir = Path("data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key: it authenticates nothing from now on."""
    from acf.adapters.memory.clock import SystemClock

    revoked = _with_keys(
        data_dir,
        database_url,
        lambda keys: keys.revoke(tenant, key_id, SystemClock().now_ms()),
    )
    if not revoked:
        typer.echo(f"error: tenant {tenant} has no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")
