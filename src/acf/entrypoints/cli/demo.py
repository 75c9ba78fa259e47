"""``acf demo``: a terminal demonstration of acf, with no server and no real waiting."""

from typing import Annotated

import typer

from acf.entrypoints.cli.common import app


@app.command("demo")
def demo(
    acts: Annotated[
        list[str] | None,
        typer.Option(
            "--act",
            metavar="NAME",
            help="Play only this act (repeatable, or comma-separated): burst, correction, "
            "duplicate, refund, crash.",
        ),
    ] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="Plain text, no colours.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per act: timeline, facts, summary.")
    ] = False,
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="ACF_LOG_LEVEL", help="Runtime log level.")
    ] = "CRITICAL",
) -> None:
    """Play a burst, a correction, a duplicate webhook, a refund with confirmation and a crash
    recovery on the embedded runtime (virtual clock), and print each act's timeline.

    Exits 1 if an act did not go as promised."""
    import json

    from rich.console import Console

    from acf.demo.terminal import choose, render, run
    from acf.logging import configure_logging

    names = [n.strip() for a in acts or () for n in a.split(",") if n.strip()]
    try:
        choose(names)
    except ValueError as exc:
        typer.echo(f"error: --act: {exc}", err=True)
        raise typer.Exit(code=2) from None
    configure_logging(log_level)
    results, wall_s = run(names)
    if as_json:
        for result in results:
            typer.echo(json.dumps(result.as_json(), ensure_ascii=False, sort_keys=True))
    else:
        console = Console(
            no_color=no_color,
            color_system=None if no_color else "auto",  # None: no bold either
            highlight=False,
            emoji=False,
        )
        render(results, console, wall_s)
    if not all(r.passed for r in results):
        raise typer.Exit(code=1)
