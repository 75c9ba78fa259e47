"""The ``acf`` application object and the options its commands share."""

from pathlib import Path
from typing import Annotated

import typer

from acf import __version__

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Agent Conversation Fabric.")
db_app = typer.Typer(no_args_is_help=True, help="The database schema (migrations).")
app.add_typer(db_app, name="db")
scenarios_app = typer.Typer(no_args_is_help=True, help="Scenario files (docs/scenarios.md).")
app.add_typer(scenarios_app, name="scenarios")

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", envvar="ACF_DATA_DIR", help="Folder of the embedded database."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="ACF_DATABASE_URL",
        help="PostgreSQL (postgresql://user@host/db) instead of the embedded file.",
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
