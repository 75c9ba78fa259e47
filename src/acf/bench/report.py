"""The benchmark's output: one table, ratios against the baselines, the targets checked."""

import json
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.table import Table

from acf.bench.measure import Result
from acf.bench.sweep import SweepPoint, flatness

TARGETS: dict[str, Callable[[Result, Result | None], bool]] = {
    "overhead p50 <= 2 ms": lambda acf, peer: (
        max(acf.overhead.to_start_p50_ms, acf.overhead.to_delivery_p50_ms) <= 2.0
    ),
    "overhead p99 <= 10 ms": lambda acf, peer: (
        max(acf.overhead.to_start_p99_ms, acf.overhead.to_delivery_p99_ms) <= 10.0
    ),
    ">= 1,000 turns/s": lambda acf, peer: acf.turns_per_s >= 1000,
    ">= 5x LangGraph turns/s": lambda acf, peer: (
        peer is not None and acf.turns_per_s >= 5 * peer.turns_per_s
    ),
    "<= 1 KB per idle session": lambda acf, peer: acf.bytes_per_idle_session <= 1024,
    "no failed turn, no fallback reply": lambda acf, peer: (
        acf.failed_turns == 0 and acf.fallback_replies == 0
    ),
}


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def table(results: Sequence[Result]) -> Table:
    out = Table(title="acf bench (one echo turn per session)")
    for column in (
        "subject",
        "ack→start p50",
        "ack→start p99",
        "end→delivery p50",
        "end→delivery p99",
        "turns/s",
        "failed / fallback",
        "bytes / idle session",
    ):
        out.add_column(column, justify="left" if column == "subject" else "right")
    for r in results:
        o = r.overhead
        out.add_row(
            r.subject,
            f"{o.to_start_p50_ms:.3f} ms",
            f"{o.to_start_p99_ms:.3f} ms",
            f"{o.to_delivery_p50_ms:.3f} ms",
            f"{o.to_delivery_p99_ms:.3f} ms",
            f"{r.turns_per_s:,.0f}",
            f"{r.failed_turns} / {r.fallback_replies}",
            f"{r.bytes_per_idle_session:,.0f}",
        )
    return out


def verdicts(acf: Result, peer: Result | None) -> dict[str, bool]:
    return {name: check(acf, peer) for name, check in TARGETS.items()}


def ratios(acf: Result, peer: Result | None) -> dict[str, float]:
    out = {}
    if peer is not None:
        out["acf turns/s ÷ LangGraph turns/s"] = acf.turns_per_s / peer.turns_per_s
    return out


def write_json(path: Path, results: Sequence[Result], settings: dict[str, Any]) -> None:
    acf = results[0]
    peer = next((r for r in results if r.subject.startswith("LangGraph")), None)
    body = {
        "machine": machine(),
        "settings": settings,
        "results": [asdict(r) for r in results],
        "ratios": ratios(acf, peer),
        "targets": verdicts(acf, peer),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n")


def sweep_table(points: Sequence[SweepPoint]) -> Table:
    out = Table(title="acf bench --sweep (embedded, one echo turn per session, all at once)")
    for column in (
        "sessions",
        "turns/s",
        "CPU ms / turn",
        "failed turns",
        "fallback replies",
        "lease.lost",
    ):
        out.add_column(column, justify="right")
    for p in points:
        out.add_row(
            f"{p.sessions:,}",
            "—" if p.error else f"{p.turns_per_s:,.0f}",
            f"{p.cpu_ms_per_turn:.3f}",
            str(p.failed_turns),
            str(p.fallback_replies),
            str(p.lease_lost),
        )
    return out


def write_sweep_json(path: Path, points: Sequence[SweepPoint], settings: dict[str, Any]) -> None:
    body = {
        "machine": machine(),
        "settings": settings,
        "points": [asdict(p) for p in points],
        "cpu_per_turn_max_over_min": flatness(points),
        "all_correct": all(p.correct for p in points),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n")
