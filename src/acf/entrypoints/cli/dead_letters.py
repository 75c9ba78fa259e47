"""``acf dead-letters``: turns whose agent failed for good, listed and replayed.

Against the embedded file (``--data-dir``) or PostgreSQL (``--database-url``), as ``acf
ledger`` and ``acf keys``. How a replay reaches the runtime:

- PostgreSQL: the replay is marked in the database and the session woken with the
  wake-ups' ``NOTIFY`` (workers listen to it, with or without Redis); were the wake-up lost,
  the workers' recovery scan finds the requested replay.
- The embedded file: a running ``acf serve`` holds it, so the command is refused with a
  pointer to the API (``POST /v1/dead-letters/{id}/replay``) and the console. With no
  ``acf serve`` running, the replay is marked and runs when ``acf serve`` next starts (its
  start-up recovery finds it).
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from acf.entrypoints.cli.common import DatabaseUrl, DataDir, app
from acf.ports.dead_letters import DeadLetter
from acf.ports.store import Store

T = TypeVar("T")

dead_letters_app = typer.Typer(
    no_args_is_help=True, help="Turns whose agent failed for good: list them, replay one."
)
app.add_typer(dead_letters_app, name="dead-letters")
Tenant = Annotated[str, typer.Option("--tenant", help="Whose dead letters (required).")]
Wake = Callable[[str, str], Awaitable[None]]


def _with_store(
    data_dir: Path, database_url: str | None, use: Callable[[Store, Wake], Awaitable[T]]
) -> T:
    """Run ``use(store, wake)`` on the embedded file or PostgreSQL; exits with a clear
    error when the database is missing, held by a running acf, or not at the head."""
    from acf.adapters.memory.clock import SystemClock
    from acf.adapters.sqlite.database import DatabaseInUse

    async def nobody(_tenant: str, _session_id: str) -> None:
        return None  # the next `acf serve` finds the replay at its start-up recovery

    async def on_sqlite() -> T:
        from acf.adapters.sqlite.store import open_sqlite_store
        from acf.bootstrap import database_path

        path = database_path(data_dir)
        if not path.exists():
            _fail(f"no database at {path}", 2)
        try:
            store = await open_sqlite_store(path, SystemClock(), migrate_to_head=False)
        except DatabaseInUse:
            _fail(
                f"a running acf holds {path}: use its API (GET /v1/dead-letters, "
                "POST /v1/dead-letters/ID/replay) or its console",
                1,
            )
        try:
            return await use(store, nobody)
        finally:
            await store.close()

    async def on_postgres() -> T:
        from acf.adapters.postgres import open_pg_store
        from acf.adapters.postgres.wakeup import PgWakeUps

        assert database_url is not None
        store = await open_pg_store(database_url, SystemClock(), pool_size=1, name="acf-cli")
        wakeups = PgWakeUps(database_url, application_name="acf-cli")
        try:
            return await use(store, wakeups.notify)
        finally:
            await wakeups.close()
            await store.close()

    try:
        return asyncio.run(on_postgres() if database_url else on_sqlite())
    except typer.Exit:
        raise  # a RuntimeError too
    except RuntimeError as exc:  # the schema is not at the head revision
        _fail(str(exc), 1)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@dead_letters_app.command("list")
def list_letters(
    tenant: Tenant,
    session: Annotated[str | None, typer.Option("--session", help="One session's only.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    data_dir: DataDir = Path("data"),
    database_url: DatabaseUrl = None,
) -> None:
    """The tenant's dead letters, newest first: what failed, how often, and its replay."""

    async def query(store: Store, _wake: Wake) -> Sequence[DeadLetter]:
        return await store.dead_letters.list(tenant, limit=limit, session_id=session)

    letters = _with_store(data_dir, database_url, query)
    if as_json:
        import dataclasses
        import json

        for d in letters:
            typer.echo(json.dumps(dataclasses.asdict(d), default=str, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in ("created", "id", "session", "pipeline", "attempts", "error", "replay"):
        table.add_column(column, overflow="fold")  # ids are never cut short
    for d in letters:
        table.add_row(
            _iso(d.created_at_ms),
            d.dead_letter_id,
            d.session_id,
            d.pipeline,
            str(d.attempts),
            d.error,
            _replay_state(d),
        )
    Console().print(table)
    typer.echo(f"{len(letters)} dead letter(s)")


@dead_letters_app.command("replay")
def replay(
    dead_letter_id: Annotated[str, typer.Argument(help="The letter's id (from `list`).")],
    tenant: Tenant,
    data_dir: DataDir = Path("data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Run a dead letter again, once, as a REPLAY turn of its session."""
    from acf.adapters.memory.clock import SystemClock
    from acf.ports.dead_letters import AlreadyReplayed, NoSuchDeadLetter
    from acf.service.dead_letters import request_replay

    async def mark(store: Store, wake: Wake) -> DeadLetter:
        return await request_replay(store, wake, SystemClock(), tenant, dead_letter_id)

    try:
        letter = _with_store(data_dir, database_url, mark)
    except NoSuchDeadLetter:
        _fail(f"tenant {tenant} has no dead letter {dead_letter_id}", 1)
    except AlreadyReplayed:
        _fail(f"dead letter {dead_letter_id} was already replayed", 1)
    where = "its session's next turn" if database_url else "when acf serve next runs"
    typer.echo(f"replay of {letter.dead_letter_id} requested: it runs as {where}")


def _replay_state(letter: DeadLetter) -> str:
    if letter.replayed_at_ms is not None:
        return f"ran in turn {letter.replay_turn_id}"
    if letter.replay_requested_at_ms is not None:
        return "requested"
    return ""


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
