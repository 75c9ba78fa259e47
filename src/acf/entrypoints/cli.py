"""The ``acf`` command line."""

import os
from pathlib import Path
from typing import Annotated

import typer

from acf import __version__

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Agent Conversation Fabric.")
db_app = typer.Typer(no_args_is_help=True, help="The database schema (migrations).")
app.add_typer(db_app, name="db")

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", envvar="ACF_DATA_DIR", help="Folder of the embedded database."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="ACF_DATABASE_URL",
        help="A SQLAlchemy URL (postgresql+psycopg://...) instead of the embedded file.",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"acf {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Agent Conversation Fabric: conversation mechanics for customer-facing AI agents."""


def _url(data_dir: Path, database_url: str | None) -> str:
    if database_url:
        return database_url
    from acf.adapters.sqlite.store import sqlite_url
    from acf.bootstrap import database_path

    os.makedirs(data_dir, exist_ok=True)
    return sqlite_url(database_path(data_dir))


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    data_dir: DataDir = Path("data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    from acf.adapters.sql import migrate

    url = _url(data_dir, database_url)
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

    url = _url(data_dir, database_url)
    migrate.downgrade(url, revision)
    typer.echo(f"database at revision {migrate.current_revision(url) or 'base'}")


@db_app.command("current")
def db_current(data_dir: DataDir = Path("data"), database_url: DatabaseUrl = None) -> None:
    """Print the database's revision and the newest one this acf knows."""
    from acf.adapters.sql import migrate

    url = _url(data_dir, database_url)
    current = migrate.current_revision(url) or "base"
    head = migrate.head_revision()
    state = "up to date" if current == head else "needs `acf db upgrade`"
    typer.echo(f"current: {current}\nhead: {head} ({state})")


def main() -> None:
    app()
