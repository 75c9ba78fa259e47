"""``acf db``: the database schema (migrations)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from acf.entrypoints.cli.common import DatabaseUrl, DataDir, db_app


@contextmanager
def _database(data_dir: Path, database_url: str | None, write: bool) -> Iterator[str | None]:
    """The database URL. To ``write``, the embedded file is created if needed and its lock
    held, so a running acf is never migrated under its feet; a read creates nothing and
    yields ``None`` when there is no file yet."""
    if database_url:
        from acf.adapters.postgres.store import alembic_url

        # postgresql:// (libpq style) means psycopg 3, the driver acf ships with.
        yield alembic_url(database_url) if database_url.startswith("postgres") else database_url
        return
    from acf.adapters.sqlite.database import DatabaseInUse, lock_database, unlock_database
    from acf.adapters.sqlite.store import sqlite_url
    from acf.bootstrap import database_path

    path = database_path(data_dir)
    if not write:
        yield sqlite_url(path) if path.exists() else None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = lock_database(path)
    except DatabaseInUse as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    try:
        yield sqlite_url(path)
    finally:
        unlock_database(fd)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    data_dir: DataDir = Path("data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    from acf.adapters.sql import migrate

    with _database(data_dir, database_url, write=True) as url:
        assert url is not None
        migrate.upgrade(url, revision)
        typer.echo(f"database at revision {migrate.current_revision(url)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision ('base' empties it).")],
    data_dir: DataDir = Path("data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Migrate the database down to REVISION."""
    from acf.adapters.sql import migrate

    with _database(data_dir, database_url, write=True) as url:
        assert url is not None
        migrate.downgrade(url, revision)
        typer.echo(f"database at revision {migrate.current_revision(url) or 'base'}")


@db_app.command("current")
def db_current(data_dir: DataDir = Path("data"), database_url: DatabaseUrl = None) -> None:
    """Print the database's revision and the newest one this acf knows."""
    from acf.adapters.sql import migrate

    with _database(data_dir, database_url, write=False) as url:
        current = (migrate.current_revision(url) if url else None) or "base"
    head = migrate.head_revision()
    state = "up to date" if current == head else "needs `acf db upgrade`"
    typer.echo(f"current: {current}\nhead: {head} ({state})")
