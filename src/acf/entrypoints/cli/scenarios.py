"""``acf scenarios run``: scenario files on the virtual clock."""

from pathlib import Path
from typing import Annotated

import typer

from acf.entrypoints.cli.common import scenarios_app


@scenarios_app.command("run")
def scenarios_run(
    path: Annotated[
        Path, typer.Argument(help="A scenario file, or a folder searched for *.yaml.")
    ] = Path("tests/scenarios"),
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="ACF_LOG_LEVEL", help="Runtime log level.")
    ] = "CRITICAL",
) -> None:
    """Run scenarios on a virtual clock against the embedded runtime; exit 1 if any fails."""
    import asyncio
    import time

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from acf.logging import configure_logging
    from acf.testing.scenarios import discover, run_path

    if not path.exists():
        typer.echo(f"error: {path} does not exist", err=True)
        raise typer.Exit(code=2)
    if not discover(path):
        typer.echo(f"error: no *.yaml scenario under {path}", err=True)
        raise typer.Exit(code=2)
    configure_logging(log_level)
    started = time.perf_counter()
    results = asyncio.run(run_path(path))
    table = Table("scenario", "result", "replies", "crashes", "virtual time", "wall time")
    for r in results:
        verdict = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
        table.add_row(
            r.name, verdict, str(r.replies), str(r.crashes), f"{r.virtual_ms} ms", f"{r.wall_ms} ms"
        )
    console = Console()
    console.print(table)
    for r in results:
        for problem in r.problems:
            console.print(f"[red]{escape(r.name)}[/red] ({r.path}): {escape(problem)}")
    failed = sum(not r.passed for r in results)
    console.print(
        f"{len(results) - failed} passed, {failed} failed in {time.perf_counter() - started:.1f} s"
    )
    if failed:
        raise typer.Exit(code=1)
