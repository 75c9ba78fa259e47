"""The tables ``acf config`` prints (rich), from the API's JSON answers."""

import json
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table


def print_table(table: Table) -> None:
    Console(width=200 if not Console().is_terminal else None).print(table)


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _value(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _status(v: dict[str, Any], listed: dict[str, Any]) -> str:
    status = str(v["status"])
    if v["number"] == listed.get("canary"):
        status += f" {listed['canary_share']}%"
    if v.get("rolled_back"):
        status += " (rolled back)"
    return status


def _gates(gates: dict[str, Any]) -> str:
    return ", ".join(
        f"{name} {'passed' if g.get('passed') else 'failed'}"
        for name, g in sorted(gates.items())
        if isinstance(g, dict)
    )


def history_table(listed: dict[str, Any]) -> Table:
    table = Table(title="configuration versions, newest first")
    for column in ("version", "status", "created", "author", "message", "hash", "git", "gates"):
        table.add_column(column, overflow="fold")
    for v in listed["items"]:
        table.add_row(
            v["label"],
            _status(v, listed),
            _when(v["created_at_ms"]),
            v["author"],
            v["message"],
            v["content_hash"],
            (v["git_commit"] or "")[:12],
            _gates(v["gates"]),
        )
    return table


def diff_table(answer: dict[str, Any]) -> Table:
    table = Table(title=f"{answer['a']} → {answer['b']}")
    for column in ("key", "change", answer["a"], answer["b"]):
        table.add_column(column, overflow="fold")
    for row in answer["rows"]:
        table.add_row(row["key"], row["change"], _value(row["before"]), _value(row["after"]))
    return table


def arms_table(answer: dict[str, Any]) -> Table:
    table = Table(title=f"since {_when(answer['since_ms'])}")
    for column in ("arm", "turns", "failed", "fallback", "handoff", "p95 ms"):
        table.add_column(column, justify="right")
    for arm, s in answer["arms"].items():
        table.add_row(
            arm,
            str(s["turns"]),
            f"{s['failed']} ({s['failure_rate']:.1%})",
            f"{s['fallback']} ({s['fallback_rate']:.1%})",
            f"{s['handoff']} ({s['handoff_rate']:.1%})",
            _value(s["latency_p95_ms"]),
        )
    return table


def explain_table(answer: dict[str, Any]) -> Table:
    table = Table(title=f"{answer['tenant']}/{answer['agent']} in {answer['version']}")
    for column in ("key", "value", "layer", "set by"):
        table.add_column(column, overflow="fold")
    for row in answer["rows"]:
        table.add_row(row["key"], _value(row["value"]), row["layer"], row["source"])
    return table
