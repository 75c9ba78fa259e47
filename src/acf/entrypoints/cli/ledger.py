"""``acf ledger``: tool executions from the ledger."""

from pathlib import Path
from typing import Annotated

import typer

from acf.entrypoints.cli.common import DataDir, app


@app.command("ledger")
def ledger(
    tenant: Annotated[str, typer.Option("--tenant", help="Whose ledger (required).")],
    customer: Annotated[str | None, typer.Option("--customer")] = None,
    tool: Annotated[str | None, typer.Option("--tool")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO 8601 time (or epoch seconds).")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO 8601 time (exclusive).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    data_dir: DataDir = Path("data"),
) -> None:
    """Tool executions from the ledger: what ran, when, under which key, with what outcome."""
    import asyncio

    from rich.console import Console
    from rich.table import Table

    from acf.adapters.memory.clock import SystemClock
    from acf.adapters.sqlite.database import DatabaseInUse
    from acf.adapters.sqlite.store import open_sqlite_store
    from acf.bootstrap import database_path
    from acf.ports.ledger import LedgerEntry, LedgerQuery
    from acf.replay.sources import parse_timestamp

    try:
        window = [None if t is None else parse_timestamp(t) for t in (since, until)]
    except ValueError as exc:
        typer.echo(f"error: --since/--until: {exc}", err=True)
        raise typer.Exit(code=2) from None
    path = database_path(data_dir)
    if not path.exists():
        typer.echo(f"error: no database at {path}", err=True)
        raise typer.Exit(code=2)

    async def query() -> list[LedgerEntry]:
        store = await open_sqlite_store(path, SystemClock(), migrate_to_head=False)
        try:
            where = LedgerQuery(customer, tool, from_ms=window[0], to_ms=window[1], limit=limit)
            return await store.ledger.query(tenant, where)
        finally:
            await store.close()

    try:
        rows = asyncio.run(query())
    except (DatabaseInUse, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        import dataclasses
        import json

        for r in rows:
            typer.echo(json.dumps(dataclasses.asdict(r), default=str, sort_keys=True))
        return
    table = Table()
    for column in ("started", "tool", "policy", "status", "customer", "key", "finished"):
        table.add_column(column, overflow="fold")  # ids are never cut short
    for r in rows:
        table.add_row(
            _iso(r.started_at_ms),
            r.tool,
            r.policy.value,
            r.status.value,
            r.customer,
            r.idempotency_key,
            _iso(r.finished_at_ms),
        )
    Console().print(table)
    typer.echo(f"{len(rows)} execution(s)")


def _iso(ms: int | None) -> str:
    from datetime import UTC, datetime

    return (
        "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
    )
