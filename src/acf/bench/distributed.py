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
- overhead: one message at a time, from the API's 2xx (as the client reads it) to the
  pipeline's start in a worker, and from the pipeline's end to the reply's arrival at the
  sink; throughput: one message to each of N sessions at once, first POST to last delivery.
"""

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from acf.bench.measure import Overhead, overhead, throughput
from acf.bench.report import machine
from acf.bench.subjects import AcfSubject, Marks, Subject
from acf.domain.replies import PipelineResult
from acf.ports.pipeline import TurnContext

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TENANT = "bench"
AGENT = "echo"
SEPARATOR = "|"
STARTUP_TIMEOUT_S = 60.0
T = TypeVar("T")

TARGETS: dict[str, Callable[["Figures", "Figures"], bool]] = {
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


# -- the delivery sink -----------------------------------------------------------------------

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Sink:
    """A minimal HTTP/1.1 server (keep-alive, Content-Length bodies) that timestamps each
    delivered reply and records the pipeline's marks carried in its text."""

    def __init__(self, marks: Marks) -> None:
        self.marks = marks
        self.deliveries = 0
        self.duplicates = 0
        self.unreadable = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                body = await reader.readexactly(length)
                arrived = time.perf_counter()
                writer.write(_OK)
                self._record(body, arrived)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def _record(self, body: bytes, arrived: float) -> None:
        self.deliveries += 1
        try:
            reply = str(json.loads(body)["payload"]["text"])
            text, started, ended = reply.rsplit(SEPARATOR, 2)
            start_mark, end_mark = float(started), float(ended)
        except (ValueError, KeyError, TypeError):
            self.unreadable += 1
            return
        m = self.marks
        if text in m.delivered:
            self.duplicates += 1
            return
        m.started[text] = start_mark
        m.ended[text] = end_mark
        m.delivered[text] = arrived
        waiter = m.waiters.pop(text, None)
        if waiter is not None:
            waiter.set()


# -- the subjects ----------------------------------------------------------------------------


class DistributedSubject:
    """POST /v1/messages to the API; ``acked`` when the client reads the 2xx."""

    name = "acf distributed (1 API + 2 workers, PostgreSQL)"

    def __init__(self, base_url: str, key: str, marks: Marks, connections: int) -> None:
        self.marks = marks
        self.rejected: list[str] = []
        self.sent: dict[str, float] = {}
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=httpx.Timeout(60.0, pool=None),
        )

    async def start(self, folder: Path) -> None:
        return None

    async def receive(self, session: str, text: str) -> None:
        body = {"agent": AGENT, "customer": session, "client_message_id": text, "text": text}
        self.sent[text] = time.perf_counter()
        try:
            response = await self._http.post("/v1/messages", json=body)
        except httpx.HTTPError as exc:
            self._refused(text, repr(exc))
            return
        if not response.is_success:
            self._refused(text, f"{response.status_code} {response.text[:200]}")
            return
        self.marks.acked[text] = time.perf_counter()

    def _refused(self, text: str, why: str) -> None:
        """Not acknowledged: recorded (the run is then reported as invalid), not awaited."""
        self.rejected.append(f"{text}: {why}")
        waiter = self.marks.waiters.pop(text, None)
        if waiter is not None:
            waiter.set()

    async def stop(self) -> None:
        await self._http.aclose()


class LangGraphPostgresSubject:
    """LangGraph with ``AsyncPostgresSaver`` over a connection pool: one echo node, one thread
    per session (the checkpointer's documented production set-up)."""

    name = "LangGraph (AsyncPostgresSaver)"

    def __init__(self, dsn: str, pool_size: int) -> None:
        self.marks = Marks()
        self._dsn = dsn
        self._pool_size = pool_size
        self._app: Any = None
        self._pool: Any = None

    async def start(self, folder: Path) -> None:
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
            from langgraph.graph import END, START, StateGraph
            from psycopg.rows import dict_row
            from psycopg_pool import AsyncConnectionPool
        except ImportError:
            raise RuntimeError(
                "the LangGraph peer needs: pip install 'acf[bench]' (make install has it)"
            ) from None
        from typing import TypedDict

        class State(TypedDict):
            text: str
            reply: str

        marks = self.marks

        async def echo(state: State) -> dict[str, str]:
            marks.started[state["text"]] = time.perf_counter()
            reply = state["text"]
            marks.ended[state["text"]] = time.perf_counter()
            return {"reply": reply}

        graph = StateGraph(State)
        graph.add_node("echo", echo)
        graph.add_edge(START, "echo")
        graph.add_edge("echo", END)
        self._pool = AsyncConnectionPool(
            self._dsn,
            min_size=self._pool_size,
            max_size=self._pool_size,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        await self._pool.open(wait=True)
        saver = AsyncPostgresSaver(self._pool)
        await saver.setup()
        self._app = graph.compile(checkpointer=saver)

    async def receive(self, session: str, text: str) -> None:
        self.marks.acked[text] = time.perf_counter()
        asyncio.get_running_loop().create_task(self._turn(session, text))

    async def _turn(self, session: str, text: str) -> None:
        out = await self._app.ainvoke(
            {"text": text, "reply": ""}, {"configurable": {"thread_id": session}}
        )
        self.marks.deliver(out["reply"])

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()


# -- figures ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    subject: str
    overhead: Overhead
    turns_per_s: float


@dataclass(slots=True)
class Evidence:
    """What the distributed processes did besides the figures."""

    deliveries: int = 0
    duplicates: int = 0
    unreadable: int = 0
    refused: int = 0
    rejected: list[str] = field(default_factory=list)
    logs: str = ""
    post_to_start_p50_ms: float = 0.0
    """Overhead turns: from the client sending the POST to the pipeline's start."""
    post_to_start_p99_ms: float = 0.0
    post_to_ack_p50_ms: float = 0.0
    """Overhead turns: the POST's round trip as the client sees it."""
    throughput_acks_per_s: float = 0.0
    """Throughput run: acknowledged messages per second, first POST to last 2xx."""
    stored: dict[str, int] = field(default_factory=dict)
    """Rows in the acf database after the run (messages, turns, outbox)."""
    log_problems: dict[str, list[str]] = field(default_factory=dict)


async def _bounded(what: str, marks: Marks, work: Awaitable[T], timeout_s: float) -> T:
    try:
        return await asyncio.wait_for(work, timeout_s)
    except TimeoutError:
        missing = sorted(marks.waiters)
        raise RuntimeError(
            f"{what}: {len(missing)} turn(s) not delivered after {timeout_s:.0f} s "
            f"(first: {missing[:5]})"
        ) from None


async def _measure(
    subject: Subject, turns: int, sessions: int, timeout_s: float, folder: Path
) -> Figures:
    await subject.start(folder)
    try:
        over = await _bounded("overhead", subject.marks, overhead(subject, turns), timeout_s)
        rate = await _bounded("throughput", subject.marks, throughput(subject, sessions), timeout_s)
    finally:
        await subject.stop()
    return Figures(subject.name, over, rate)


# -- the database and the processes ----------------------------------------------------------


def _libpq(url: str) -> str:
    """A libpq DSN from a SQLAlchemy-style URL (``postgresql+psycopg://`` accepted)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextlib.contextmanager
def temporary_databases(admin_url: str, count: int) -> Iterator[list[str]]:
    """``count`` new ``acf_bench_<hex>`` databases (their URLs), dropped afterwards."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    admin = _libpq(admin_url)
    names: list[str] = []
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            for _ in range(count):
                name = f"acf_bench_{uuid.uuid4().hex[:12]}"
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                names.append(name)
        base = make_url(admin)
        yield [base.set(database=name).render_as_string(hide_password=False) for name in names]
    finally:
        if names:
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                for name in names:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )


def _acf_command() -> list[str]:
    return [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]


def _run_acf(args: Sequence[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [*_acf_command(), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"acf {' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(folder: Path, sink_port: int) -> Path:
    path = folder / "bench.yaml"
    path.write_text(
        "version: 1\n"
        "tenants:\n"
        f"  {TENANT}:\n"
        f"    web_delivery_url: http://127.0.0.1:{sink_port}/deliver\n"
        "    limits: {accepted_messages: 1000000/second}\n"
        "    channels:\n"
        "      web: {mode: off}\n"
        "    agents:\n"
        f"      {AGENT}:\n"
        "        pipeline: {kind: python, factory: 'acf.bench.distributed:factory'}\n",
        encoding="utf-8",
    )
    return path


class Processes:
    """The API and worker subprocesses, their output in log files; always stopped."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self._folder = folder
        self._env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def spawn(self, label: str, args: Sequence[str]) -> None:
        log = self._folder / f"{label}.log"
        self.logs[label] = log
        with log.open("wb") as out:
            self.running[label] = subprocess.Popen(
                [*_acf_command(), *args], env=self._env, stdout=out, stderr=subprocess.STDOUT
            )

    def check_alive(self) -> None:
        for label, process in self.running.items():
            if process.poll() is not None:
                raise RuntimeError(f"{label} exited with {process.returncode}: {self.tail(label)}")

    def tail(self, label: str, chars: int = 2000) -> str:
        return self.logs[label].read_text(errors="replace")[-chars:]

    def problems(self) -> dict[str, list[str]]:
        """Log lines that look like errors, per process."""
        out: dict[str, list[str]] = {}
        for label, log in self.logs.items():
            lines = [
                line
                for line in log.read_text(errors="replace").splitlines()
                if any(w in line for w in ("ERROR", "Traceback", "CRITICAL", "Exception"))
            ]
            if lines:
                out[label] = lines[:20]
        return out

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for process in self.running.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _wait_ready(processes: Processes, base_url: str, workers: Sequence[str]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while True:
            processes.check_alive()
            ready = False
            with contextlib.suppress(httpx.HTTPError):
                ready = (await http.get("/readyz")).status_code == 200
            running = all(
                "worker running" in processes.logs[w].read_text(errors="replace") for w in workers
            )
            if ready and running:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the processes did not start in {STARTUP_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.2)


async def distributed(
    database_url: str,
    folder: Path,
    turns: int,
    sessions: int,
    workers: int,
    pool_size: int,
    connections: int,
    timeout_s: float,
) -> tuple[Figures, Evidence]:
    """Start 1 API + ``workers`` workers over ``database_url`` and measure them."""
    env = dict(os.environ)
    env.update(
        ACF_DATABASE_URL=database_url,
        ACF_DB_POOL_SIZE=str(pool_size),
        ACF_LOG_LEVEL="WARNING",
        ACF_SHUTDOWN_GRACE_S="2",
        PYTHONUNBUFFERED="1",
    )
    env.pop("ACF_REDIS_URL", None)
    if os.environ.get("ACF_BENCH_REDIS_URL"):
        env["ACF_REDIS_URL"] = os.environ["ACF_BENCH_REDIS_URL"]
    await asyncio.to_thread(_run_acf, ["db", "upgrade"], env)
    created = await asyncio.to_thread(_run_acf, ["keys", "create", "--tenant", TENANT], env)
    key = created.strip().splitlines()[0].strip()  # stdout holds the key alone
    marks = Marks()
    sink = Sink(marks)
    sink_port = await sink.start()
    config = _config(folder, sink_port)
    api_port = _free_port()
    processes = Processes(folder, env)
    subject = DistributedSubject(f"http://127.0.0.1:{api_port}", key, marks, connections)
    evidence = Evidence()
    try:
        processes.spawn(
            "api", ["serve", "--role", "api", "--port", str(api_port), "--config", str(config)]
        )
        names = [f"worker{i + 1}" for i in range(workers)]
        for name in names:
            processes.spawn(name, ["serve", "--role", "worker", "--config", str(config)])
        await _wait_ready(processes, f"http://127.0.0.1:{api_port}", names)
        figures = await _measure(subject, turns, sessions, timeout_s, folder)
        processes.check_alive()
        await asyncio.sleep(0.5)  # late duplicates, if any, reach the sink
        _details(subject, turns, sessions, evidence)
        evidence.stored = await asyncio.to_thread(_stored, database_url)
    finally:
        try:
            await subject.stop()
            await sink.stop()
        finally:
            await asyncio.to_thread(processes.stop)
            evidence.deliveries = sink.deliveries
            evidence.duplicates = sink.duplicates
            evidence.unreadable = sink.unreadable
            evidence.refused = len(subject.rejected)
            evidence.rejected = subject.rejected[:20]
            evidence.logs = str(folder)
            evidence.log_problems = processes.problems()
    return figures, evidence


def _details(subject: DistributedSubject, turns: int, sessions: int, evidence: Evidence) -> None:
    from acf.stats import percentile

    m, sent = subject.marks, subject.sent
    seq = [f"seq-{i}" for i in range(turns)]
    to_start = [(m.started[t] - sent[t]) * 1000 for t in seq if t in m.started]
    round_trip = [(m.acked[t] - sent[t]) * 1000 for t in seq if t in m.acked]
    if to_start and round_trip:
        evidence.post_to_start_p50_ms = percentile(to_start, 50)
        evidence.post_to_start_p99_ms = percentile(to_start, 99)
        evidence.post_to_ack_p50_ms = percentile(round_trip, 50)
    tp = [f"tp-{i}" for i in range(sessions)]
    acks = [m.acked[t] for t in tp if t in m.acked]
    if acks:
        evidence.throughput_acks_per_s = len(acks) / (max(acks) - min(sent[t] for t in tp))


def _stored(database_url: str) -> dict[str, int]:
    import psycopg

    out: dict[str, int] = {}
    with psycopg.connect(_libpq(database_url), connect_timeout=5) as conn:
        for table in ("messages", "turns", "outbox"):
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            out[table] = int(row[0]) if row else -1
    return out


# -- the run ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    distributed: Figures
    embedded: Figures
    peer: Figures
    evidence: Evidence
    settings: dict[str, Any]
    load: tuple[float, float] = (0.0, 0.0)

    def ratios(self) -> dict[str, float]:
        d, e, p = self.distributed, self.embedded, self.peer
        return {
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
            "results": [asdict(f) for f in (self.distributed, self.embedded, self.peer)],
            "ratios": self.ratios(),
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
        embedded = await _measure(
            AcfSubject(), args.turns, args.sessions, args.timeout, folder / "embedded"
        )
        _say("LangGraph (AsyncPostgresSaver)")
        peer = await _measure(
            LangGraphPostgresSubject(_libpq(langgraph_url), args.pool_size),
            args.turns,
            args.sessions,
            args.timeout,
            folder,
        )
    return Run(dist, embedded, peer, evidence, settings, (load_start, os.getloadavg()[0]))


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
    for r in (result.distributed, result.embedded, result.peer):
        o = r.overhead
        out.add_row(
            r.subject,
            f"{o.to_start_p50_ms:.3f} ms",
            f"{o.to_start_p99_ms:.3f} ms",
            f"{o.to_delivery_p50_ms:.3f} ms",
            f"{o.to_delivery_p99_ms:.3f} ms",
            f"{r.turns_per_s:,.0f}",
        )
    console = Console(width=max(Console().width, 140))
    console.print(out)
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
