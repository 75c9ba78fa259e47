"""The ``acf`` command line: one module per command group, registered on one app."""

from acf.entrypoints.cli import db, ledger, measure, scenarios
from acf.entrypoints.cli.common import app

__all__ = ["app", "db", "ledger", "main", "measure", "scenarios"]


def main() -> None:
    app()
