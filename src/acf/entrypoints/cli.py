"""The ``acf`` command line."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def _database(data_dir: Path, database_url: str | None, write: bool) -> Iterator[str | None]:
    """The database URL. To ``write``, the embedded file is created if needed and its lock
    held, so a running acf is never migrated under its feet; a read creates nothing and
    yields ``None`` when there is no file yet."""
    if database_url:
        yield database_url
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
            console.print(f"[red]{r.name}[/red] ({r.path}): {problem}", markup=True)
    failed = sum(not r.passed for r in results)
    console.print(
        f"{len(results) - failed} passed, {failed} failed in {time.perf_counter() - started:.1f} s"
    )
    if failed:
        raise typer.Exit(code=1)


@app.command("replay")
def replay(
    path: Annotated[Path, typer.Argument(help="A timed chat log (Slack XML, CSV or JSONL).")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="slack, csv or jsonl (default: from the name).")
    ] = None,
    latency_ms: Annotated[
        int, typer.Option("--latency-ms", min=0, help="The pipeline's time per turn.")
    ] = 2000,
    typing_cps: Annotated[
        float,
        typer.Option(
            "--typing-cps",
            min=0,
            help="Synthesise typing signals at this many characters per second (0: none).",
        ),
    ] = 0.0,
    channel: Annotated[str, typer.Option("--channel", help="Whose adaptive policy acf uses.")] = (
        "whatsapp"
    ),
    conversations: Annotated[
        int | None, typer.Option("--conversations", min=1, help="Only the first N conversations.")
    ] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Also write the comparison as a PNG image.")
    ] = None,
) -> None:
    """Replay real chat timing through acf and through fixed windows and naive replies."""
    import asyncio

    from rich.console import Console

    from acf.domain.channels import Channel
    from acf.logging import configure_logging
    from acf.replay import report
    from acf.replay.simulate import default_strategies, simulate
    from acf.replay.sources import SourceError, read

    try:
        chosen = Channel(channel)
    except ValueError:
        typer.echo(f"error: unknown channel {channel!r}", err=True)
        raise typer.Exit(code=2) from None
    try:
        lines = read(path, fmt)
    except (SourceError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if conversations is not None:
        keep: list[str] = []
        for line in lines:
            if line.conversation not in keep:
                keep.append(line.conversation)
        wanted = set(keep[:conversations])
        lines = [line for line in lines if line.conversation in wanted]
    if not lines:
        typer.echo(f"error: {path} holds no message", err=True)
        raise typer.Exit(code=2)
    configure_logging("CRITICAL")
    console = Console(stderr=True)
    measures = []
    for strategy in default_strategies(chosen, typing_cps > 0):
        with console.status(f"replaying {len(lines)} messages: {strategy.name}"):
            measures.append(asyncio.run(simulate(lines, strategy, latency_ms, chosen, typing_cps)))
    title = (
        f"{path.name}: {measures[0].messages} messages, {measures[0].runs} same-sender runs; "
        f"pipeline {latency_ms} ms; typing {f'{typing_cps:g} cps' if typing_cps else 'off'}; "
        f"{chosen.value} policy"
    )
    Console().print(report.table(measures, title))
    if plot_path is not None:
        try:
            report.plot(measures, title, plot_path)
        except RuntimeError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=1) from None
        typer.echo(f"plot written to {plot_path}")


@app.command("bench")
def bench(
    turns: Annotated[
        int, typer.Option("--turns", min=10, help="Turns for the overhead measurement.")
    ] = 1000,
    sessions: Annotated[
        int, typer.Option("--sessions", min=10, help="Sessions for the throughput measurement.")
    ] = 10_000,
    memory_sessions: Annotated[
        int, typer.Option("--memory-sessions", min=10, help="Sessions for the memory measurement.")
    ] = 2_000,
    peer: Annotated[
        bool, typer.Option("--peer/--no-peer", help="Also measure LangGraph (the 'bench' extra).")
    ] = True,
    durability: Annotated[
        str, typer.Option("--durability", help="SQLite synchronous level: full or normal.")
    ] = "full",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON.")
    ] = None,
) -> None:
    """Fabric overhead, throughput and memory, beside a naive baseline and LangGraph."""
    import asyncio

    from rich.console import Console

    from acf.adapters.sqlite.database import Durability
    from acf.bench import report
    from acf.bench.measure import Result, measure
    from acf.bench.subjects import AcfSubject, LangGraphSubject, NaiveSubject, Subject
    from acf.logging import configure_logging

    try:
        level = Durability(durability)
    except ValueError:
        typer.echo(f"error: --durability must be full or normal, not {durability!r}", err=True)
        raise typer.Exit(code=2) from None
    configure_logging("CRITICAL")
    console = Console(stderr=True)
    makers: list[tuple[str, Callable[[], Subject]]] = [
        ("acf", lambda: AcfSubject(level)),
        ("naive", NaiveSubject),
    ]
    if peer:
        makers.append(("LangGraph", LangGraphSubject))
    results: list[Result] = []
    for label, make in makers:
        with console.status(f"measuring {label}"):
            try:
                results.append(asyncio.run(measure(make, turns, sessions, memory_sessions)))
            except RuntimeError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(code=1) from None
    out = Console()
    out.print(report.table(results))
    acf_result = results[0]
    peer_result = results[2] if peer else None
    for name, value in report.ratios(acf_result, peer_result).items():
        out.print(f"{name}: {value:.2f}")
    for name, met in report.verdicts(acf_result, peer_result).items():
        out.print(f"target {name}: {'met' if met else 'MISSED'}")
    if json_path is not None:
        settings = {
            "turns": turns,
            "sessions": sessions,
            "memory_sessions": memory_sessions,
            "durability": level.value,
        }
        report.write_json(json_path, results, settings)
        out.print(f"results written to {json_path}")


def main() -> None:
    app()
