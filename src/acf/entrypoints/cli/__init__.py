"""The ``acf`` command line: one module per command group, registered on one app."""

from acf.entrypoints.cli import (
    config,
    config_preview,
    db,
    dead_letters,
    demo,
    keys,
    ledger,
    measure,
    scenarios,
    serve,
)
from acf.entrypoints.cli.common import app

__all__ = [
    "app",
    "config",
    "config_preview",
    "db",
    "dead_letters",
    "demo",
    "keys",
    "ledger",
    "main",
    "measure",
    "scenarios",
    "serve",
]


def main() -> None:
    app()
