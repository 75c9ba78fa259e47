"""``acf config preview V``: what version V would have done to recorded sessions.

Reads the tenant's store (a snapshot of the embedded file, so it works while ``acf serve``
runs, or PostgreSQL), replays the chosen sessions through V in a sandbox and prints, per
session, how replies, tool calls and outcome categories differ from what happened
(``acf.preview``). ``--fail-on-change KIND`` makes it a regression gate.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from acf.entrypoints.cli.common import DatabaseUrl, DataDir
from acf.entrypoints.cli.config import config_app
from acf.preview.diff import Change, Kind, SessionDiff, ToolCallView

if TYPE_CHECKING:
    from acf.ports.store import Store
    from acf.preview.replay import PreviewReport

PREVIEW_LIMIT = 10_000


def version_number(text: str) -> int:
    """``3`` or ``v3`` → 3; ``BadParameter`` otherwise."""
    digits = text[1:] if text[:1] in ("v", "V") else text
    if not digits.isdigit() or int(digits) < 1:
        raise typer.BadParameter(f"{text!r}: a version is a number (3) or a label (v3)")
    return int(digits)


@config_app.command("preview")
def preview_command(
    version: Annotated[str, typer.Argument(help="The version to preview: 3 or v3.")],
    tenant: Annotated[str, typer.Option("--tenant", help="Whose version and sessions.")],
    sessions: Annotated[
        int | None,
        typer.Option("--sessions", min=1, max=PREVIEW_LIMIT, help="The N most recent sessions."),
    ] = None,
    session: Annotated[str | None, typer.Option("--session", help="One session, by id.")] = None,
    fail_on_change: Annotated[
        list[Kind] | None,
        typer.Option("--fail-on-change", help="Exit 1 when a session changed in this kind."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    llm_base_url: Annotated[
        str | None,
        typer.Option(
            "--llm-base-url",
            help="A model endpoint for requests no recorded completion answers.",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="ACF_LOG_LEVEL", help="The sandbox's log level.")
    ] = "CRITICAL",
    data_dir: DataDir = Path("data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Replay recorded sessions through version V in a sandbox and diff replies, tool calls
    and outcome categories against what happened. Exit 0; 1 with --fail-on-change when a
    session changed in that kind; 2 when the preview cannot run."""
    import asyncio
    import json

    from acf.demo import demo_tools
    from acf.logging import configure_logging
    from acf.preview.recorded import PreviewError
    from acf.preview.replay import PreviewRequest, preview

    if (sessions is None) == (session is None):
        _fail("give exactly one of --sessions N and --session ID", 2)
    number = version_number(version)
    configure_logging(log_level)  # JSON lines on stderr: stdout stays the report
    request = PreviewRequest(tenant, number, session, sessions, llm_base_url, demo_tools())

    async def run() -> "PreviewReport":
        async with reading(data_dir, database_url) as store:
            return await preview(store, request)

    try:
        report = asyncio.run(run())
    except PreviewError as exc:
        _fail(str(exc), 2)
    from acf.preview.diff import gate_fails

    if as_json:
        typer.echo(json.dumps(report.to_json(), sort_keys=True, default=str))
    else:
        _print(report)
    failing = gate_fails(report.summary, fail_on_change or [])
    if failing:
        names = ", ".join(k.value for k in failing)
        typer.echo(f"changed: {names} (--fail-on-change)", err=True)
        raise typer.Exit(1)


def _print(report: "PreviewReport") -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    table = Table(title=f"{report.tenant} {report.version}: preview of recorded sessions")
    for column in ("session", "customer", "channel", "messages", *[k.value for k in Kind]):
        table.add_column(column, overflow="fold")
    for d in report.sessions:
        cells = [_cell(d, k) for k in Kind]
        table.add_row(d.session_id, d.customer, d.channel, str(d.messages), *cells)
    console.print(table)
    for d in report.sessions:
        for problem in d.problems:
            console.print(f"[red]{escape(d.session_id)}[/red]: {escape(problem)}")
        for change in d.changes:
            console.print(f"{escape(d.session_id)} {escape(_describe(change))}")
    s = report.summary
    kinds = ", ".join(f"{k.value} {s.sessions_changed_by_kind.get(k, 0)}" for k in Kind)
    console.print(
        f"{s.sessions} sessions: {s.changed} changed, {s.unchanged} unchanged ({kinds}); "
        f"{report.tool_calls} tool calls answered from the ledger's recorded results, "
        f"{s.sandbox_calls} with a sandbox result; model completions: {report.model_reused} "
        f"recorded, {report.model_live} live; nothing was sent to a channel"
    )
    for note in report.notes:
        console.print(f"note: {escape(note)}")


def _cell(diff: SessionDiff, kind: Kind) -> str:
    count = sum(c.kind is kind for c in diff.changes)
    return f"[yellow]{count} changed[/yellow]" if count else "="


def _describe(change: Change) -> str:
    where = f"{change.kind.value} #{change.position + 1}"
    before, after = _text(change.before), _text(change.after)
    if change.before is None:
        return f"{where}: + {after}"
    if change.after is None:
        return f"{where}: - {before}"
    return f"{where}: {before} -> {after}"


def _text(item: object) -> str:
    import json

    if isinstance(item, ToolCallView):
        flag = " [sandbox result]" if item.sandbox else ""
        return f"{item.tool}({json.dumps(dict(item.args), sort_keys=True)}){flag}"
    return json.dumps(item, ensure_ascii=False)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


# -- the tenant's store ------------------------------------------------------------------
# The embedded file is never opened by the preview itself: it reads a consistent snapshot
# (SQLite's online backup through a read-only connection), so it works while `acf serve`
# holds the file and cannot write to it; the snapshot is migrated to this acf's schema in
# its temporary folder if it is older. PostgreSQL is read through one pooled connection.
# Recording a gate writes, so it opens the embedded file as `acf serve` does and is refused
# while a running acf holds it.


def snapshot(source: Path, target: Path) -> None:
    """Copy the database at ``source`` to ``target`` as of one instant (blocking)."""
    import sqlite3

    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        writer = sqlite3.connect(target)
        try:
            reader.backup(writer)
        finally:
            writer.close()
    finally:
        reader.close()


@asynccontextmanager
async def reading(data_dir: Path, database_url: str | None) -> AsyncIterator["Store"]:
    """The tenant's store to read: a snapshot of the embedded file, or PostgreSQL."""
    import asyncio
    import sqlite3
    import tempfile

    from acf.adapters.memory.clock import SystemClock
    from acf.preview.recorded import PreviewError

    if database_url:
        async with _postgres(database_url, "acf-preview") as store:
            yield store
        return
    from acf.adapters.sqlite.store import open_sqlite_store
    from acf.bootstrap import database_path

    path = database_path(data_dir)
    if not path.exists():
        raise PreviewError(f"no database at {path}")
    with tempfile.TemporaryDirectory(prefix="acf-preview-store-") as tmp:
        copy = Path(tmp) / path.name
        try:
            await asyncio.to_thread(snapshot, path, copy)
            sqlite = await open_sqlite_store(copy, SystemClock(), migrate_to_head=True)
        except (sqlite3.Error, RuntimeError) as exc:
            raise PreviewError(f"cannot read {path}: {exc}") from None
        try:
            yield sqlite
        finally:
            await sqlite.close()


@asynccontextmanager
async def writing(data_dir: Path, database_url: str | None) -> AsyncIterator["Store"]:
    """The tenant's store to record a gate in; ``PreviewError`` when a running acf holds
    the embedded file or the schema is not at the head revision."""
    from acf.adapters.memory.clock import SystemClock
    from acf.preview.recorded import PreviewError

    if database_url:
        async with _postgres(database_url, "acf-cli") as store:
            yield store
        return
    from acf.adapters.sqlite.database import DatabaseInUse
    from acf.adapters.sqlite.store import open_sqlite_store
    from acf.bootstrap import database_path

    path = database_path(data_dir)
    if not path.exists():
        raise PreviewError(f"no database at {path}")
    try:
        sqlite = await open_sqlite_store(path, SystemClock(), migrate_to_head=False)
    except DatabaseInUse:
        raise PreviewError(
            f"a running acf holds {path}: stop it to record the gate, or use PostgreSQL"
        ) from None
    except RuntimeError as exc:  # the schema is not at the head revision
        raise PreviewError(str(exc)) from None
    try:
        yield sqlite
    finally:
        await sqlite.close()


@asynccontextmanager
async def _postgres(url: str, name: str) -> AsyncIterator["Store"]:
    from acf.adapters.memory.clock import SystemClock
    from acf.adapters.postgres import open_pg_store
    from acf.preview.recorded import PreviewError

    try:
        pg = await open_pg_store(url, SystemClock(), pool_size=1, name=name)
    except RuntimeError as exc:  # the schema is not at the head revision
        raise PreviewError(str(exc)) from None
    except _unreachable() as exc:
        raise PreviewError(f"cannot reach PostgreSQL at {_safe(url)}: {_first_line(exc)}") from None
    try:
        yield pg
    finally:
        await pg.close()


def _unreachable() -> tuple[type[BaseException], ...]:
    """What opening PostgreSQL raises when it cannot be reached: the connection refused or
    timed out, the name not resolved, the server refusing the login."""
    import psycopg
    import psycopg_pool
    import sqlalchemy.exc

    return (OSError, sqlalchemy.exc.OperationalError, psycopg.Error, psycopg_pool.PoolTimeout)


def _safe(url: str) -> str:
    """``url`` without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "the given URL"


def _first_line(exc: BaseException) -> str:
    """The driver's own error when SQLAlchemy wraps it (its first line: no SQL, no URL)."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__
