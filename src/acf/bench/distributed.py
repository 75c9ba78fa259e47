"""The core benchmark in distributed mode: 1 API + 2 workers over a local PostgreSQL, beside
embedded acf and LangGraph with its async PostgreSQL checkpointer, in the same run.

``python -m acf.bench.distributed [--sessions N] [--turns N] [--admin-url URL]``

- A temporary database ``acf_bench_<hex>`` is created on the server of ``--admin-url``
  (default ``postgresql://postgres@127.0.0.1:5432/postgres``) and dropped afterwards; the
  API and worker subprocesses are always stopped (``finally``).
- The agent's pipeline is :func:`factory` (``acf.bench.distributed:factory``), a no-op echo
  that writes when it started and ended into its reply (``time.perf_counter()``: on Linux
  ``CLOCK_MONOTONIC``, one clock for every process of the machine).
- The tenant's ``web_delivery_url`` is a sink served by this process: each reply's arrival
  is timestamped there.
- the floor (:mod:`acf.bench.floor`): one process that takes the same POSTs and posts each
  reply to the same sink at once, nothing stored, on acf's HTTP stack: what HTTP in and
  HTTP out cost at least, and the turns/s the machine's CPUs allow at that cost.
- overhead: one message at a time, from the API's 2xx (as the client reads it) to the
  pipeline's start in a worker, and from the pipeline's end to the reply's arrival at the
  sink; throughput: one message to each of N sessions at once, first POST to last delivery.

Here: the workers' pipeline, the run, its report and the command line. The processes and
their client are in :mod:`acf.bench.cluster` (and :mod:`~acf.bench.processes`), the sink in
:mod:`~acf.bench.sink`, the databases in :mod:`~acf.bench.databases`, the measurement in
:mod:`~acf.bench.figures`, the LangGraph peer in :mod:`~acf.bench.langgraph_peers`.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acf.bench.cluster import Evidence, distributed
from acf.bench.databases import libpq, temporary_databases
from acf.bench.figures import Figures, measure_figures
from acf.bench.floor import ceiling_turns_per_s, floor
from acf.bench.langgraph_peers import LangGraphPostgresSubject
from acf.bench.report import machine
from acf.bench.sink import SEPARATOR
from acf.bench.subjects import AcfSubject
from acf.domain.replies import PipelineResult
from acf.ports.pipeline import TurnContext

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

TARGETS: dict[str, Callable[[Figures, Figures], bool]] = {
    "overhead p50 <= 5 ms": lambda acf, peer: (
        max(acf.overhead.to_start_p50_ms, acf.overhead.to_delivery_p50_ms) <= 5.0
    ),
    "overhead p99 <= 20 ms": lambda acf, peer: (
        max(acf.overhead.to_start_p99_ms, acf.overhead.to_delivery_p99_ms) <= 20.0
    ),
    ">= 500 turns/s": lambda acf, peer: acf.turns_per_s >= 500,
    ">= 2.5x LangGraph (AsyncPostgresSaver) turns/s": lambda acf, peer: (
        acf.turns_per_s >= 2.5 * peer.turns_per_s
    ),
}


# -- the pipeline the workers run ------------------------------------------------------------


class TimedEcho:
    """Replies ``text|started|ended`` (perf_counter readings of this process)."""

    name = "bench-echo"
    version = "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        started = time.perf_counter()
        text = ctx.messages[-1].text or ""
        ended = time.perf_counter()
        return PipelineResult.reply(f"{text}{SEPARATOR}{started!r}{SEPARATOR}{ended!r}")


def factory() -> TimedEcho:
    """The configuration's ``python`` pipeline factory (``acf.bench.distributed:factory``)."""
    return TimedEcho()


# -- the run ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    distributed: Figures
    embedded: Figures
    peer: Figures
    floor: Figures
    evidence: Evidence
    settings: dict[str, Any]
    load: tuple[float, float] = (0.0, 0.0)

    def ceilings(self) -> dict[str, float]:
        """Turns/s the machine's CPUs allow at each subject's CPU per turn (throughput run)."""
        cpus = os.cpu_count() or 1
        return {
            r.subject: ceiling_turns_per_s(r, cpus)
            for r in (self.distributed, self.embedded, self.peer, self.floor)
        }

    def ratios(self) -> dict[str, float]:
        d, e, p, f = self.distributed, self.embedded, self.peer, self.floor
        floor_cpu = f.cpu_ms_per_turn.get("total", 0.0)
        return {
            "distributed turns/s ÷ floor turns/s": d.turns_per_s / f.turns_per_s,
            "distributed CPU per turn ÷ floor CPU per turn": (
                d.cpu_ms_per_turn.get("total", 0.0) / floor_cpu if floor_cpu else float("nan")
            ),
            "distributed turns/s ÷ LangGraph (AsyncPostgresSaver) turns/s": (
                d.turns_per_s / p.turns_per_s
            ),
            "distributed turns/s ÷ embedded turns/s": d.turns_per_s / e.turns_per_s,
            "distributed ack→start p50 ÷ embedded": (
                d.overhead.to_start_p50_ms / e.overhead.to_start_p50_ms
            ),
            "distributed end→delivery p50 ÷ embedded": (
                d.overhead.to_delivery_p50_ms / e.overhead.to_delivery_p50_ms
            ),
        }

    def verdicts(self) -> dict[str, bool]:
        return {name: check(self.distributed, self.peer) for name, check in TARGETS.items()}

    def as_json(self) -> dict[str, Any]:
        return {
            "machine": {**machine(), "load_average_1m_at_start_and_end": self.load},
            "settings": self.settings,
            "results": [
                asdict(f) for f in (self.distributed, self.embedded, self.peer, self.floor)
            ],
            "ratios": self.ratios(),
            "ceilings_turns_per_s": self.ceilings(),
            "targets": self.verdicts(),
            "evidence": asdict(self.evidence),
        }


async def run(args: argparse.Namespace) -> Run:
    settings = {
        "turns": args.turns,
        "sessions": args.sessions,
        "workers": args.workers,
        "db_pool_size": args.pool_size,
        "client_connections": args.connections,
        "langgraph_pool_size": args.pool_size,
        "embedded_durability": "full",
    }
    load_start = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="acf-bench-dist-") as tmp,
        temporary_databases(args.admin_url, 2) as (acf_url, langgraph_url),
    ):
        folder = Path(tmp)
        logs = args.logs or Path(tempfile.mkdtemp(prefix="acf-bench-dist-logs-"))
        logs.mkdir(parents=True, exist_ok=True)
        _say("the floor: HTTP in → HTTP out, nothing stored")
        base = await floor(logs, args.turns, args.sessions, args.connections, args.timeout)
        _say(f"distributed: 1 API + {args.workers} workers (logs in {logs})")
        dist, evidence = await distributed(
            acf_url,
            logs,
            args.turns,
            args.sessions,
            args.workers,
            args.pool_size,
            args.connections,
            args.timeout,
        )
        _say("embedded acf (SQLite, FULL)")
        (folder / "embedded").mkdir()
        embedded = await measure_figures(
            AcfSubject(), args.turns, args.sessions, args.timeout, folder / "embedded"
        )
        _say("LangGraph (AsyncPostgresSaver)")
        peer = await measure_figures(
            LangGraphPostgresSubject(libpq(langgraph_url), args.pool_size),
            args.turns,
            args.sessions,
            args.timeout,
            folder,
        )
    load = (load_start, os.getloadavg()[0])
    return Run(dist, embedded, peer, base, evidence, settings, load)


def _say(what: str) -> None:
    print(f"measuring {what}…", file=sys.stderr, flush=True)


def print_run(result: Run) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(title="acf bench, distributed mode (one echo turn per session)")
    for column in (
        "subject",
        "ack→start p50",
        "ack→start p99",
        "end→delivery p50",
        "end→delivery p99",
        "turns/s",
    ):
        out.add_column(column, justify="left" if column == "subject" else "right")
    for r in (result.distributed, result.embedded, result.peer, result.floor):
        o = r.overhead
        # The floor posts the reply while it answers: its "start" precedes the 2xx.
        start = r is not result.floor
        out.add_row(
            r.subject,
            f"{o.to_start_p50_ms:.3f} ms" if start else "—",
            f"{o.to_start_p99_ms:.3f} ms" if start else "—",
            f"{o.to_delivery_p50_ms:.3f} ms",
            f"{o.to_delivery_p99_ms:.3f} ms",
            f"{r.turns_per_s:,.0f}",
        )
    console = Console(width=max(Console().width, 140))
    console.print(out)
    ceilings = result.ceilings()
    for r in (result.distributed, result.embedded, result.peer, result.floor):
        parts = ", ".join(f"{k} {v:.2f}" for k, v in r.cpu_ms_per_turn.items())
        console.print(f"CPU ms per turn (throughput run), {r.subject}: {parts}")
        console.print(
            f"  turns/s {os.cpu_count()} busy CPUs allow at that cost: {ceilings[r.subject]:,.0f}"
        )
    for name, value in result.ratios().items():
        console.print(f"{name}: {value:.2f}")
    for name, met in result.verdicts().items():
        console.print(f"target {name}: {'met' if met else 'MISSED'}")
    e = result.evidence
    console.print(
        f"deliveries at the sink: {e.deliveries} (duplicates {e.duplicates}, "
        f"unreadable {e.unreadable}); refused POSTs: {e.refused}; "
        f"processes with error lines in their logs: {sorted(e.log_problems) or 'none'}"
    )
    console.print(
        f"POST→start p50 {e.post_to_start_p50_ms:.3f} ms, p99 {e.post_to_start_p99_ms:.3f} ms; "
        f"POST→2xx p50 {e.post_to_ack_p50_ms:.3f} ms; throughput run: "
        f"{e.throughput_acks_per_s:,.0f} acknowledgements/s; stored rows {e.stored}"
    )
    if e.refused:
        console.print(f"RUN INVALID: {e.refused} POSTs not acknowledged, e.g. {e.rejected[:3]}")
    console.print(f"the processes' logs: {e.logs}")
    console.print(
        "load average (1 min) at start / end: "
        f"{result.load[0]:.1f} / {result.load[1]:.1f} on {os.cpu_count()} CPUs"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m acf.bench.distributed",
        description="acf in distributed mode (1 API + N workers over PostgreSQL) beside "
        "embedded acf and LangGraph with AsyncPostgresSaver, in one run.",
    )
    p.add_argument("--turns", type=int, default=1000, help="turns for the overhead (1000)")
    p.add_argument("--sessions", type=int, default=2000, help="sessions for throughput (2000)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    p.add_argument("--pool-size", type=int, default=10, help="ACF_DB_POOL_SIZE per process (10)")
    p.add_argument("--connections", type=int, default=64, help="the client's HTTP connections (64)")
    p.add_argument(
        "--admin-url",
        default=os.environ.get("ACF_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="a database on the server where the temporary databases are created "
        f"(default {DEFAULT_ADMIN_URL}, or ACF_BENCH_POSTGRES_URL)",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="per measurement, seconds")
    p.add_argument(
        "--logs", type=Path, default=None, help="the processes' logs (default: a kept temp folder)"
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from acf.logging import configure_logging

    args = parser().parse_args(argv)
    configure_logging("CRITICAL")
    try:
        result = asyncio.run(run(args))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print_run(result)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.as_json(), indent=2, ensure_ascii=False) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
