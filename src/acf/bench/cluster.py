"""acf in distributed mode, measured: 1 API + N workers over a PostgreSQL database, the
client that posts to the API (:class:`DistributedSubject`), and the :class:`Evidence` of
what the processes did besides the figures.
"""

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from acf.bench.databases import analyze, stored_rows
from acf.bench.figures import Figures, measure_figures
from acf.bench.marks import Marks
from acf.bench.processes import Processes, free_port, run_acf, wait_ready
from acf.bench.sink import Sink

TENANT = "bench"
AGENT = "echo"


class DistributedSubject:
    """POST /v1/messages to the API; ``acked`` when the client reads the 2xx."""

    name = "acf distributed (1 API + 2 workers, PostgreSQL)"

    def __init__(self, base_url: str, key: str, marks: Marks, connections: int) -> None:
        self.marks = marks
        self.rejected: list[str] = []
        self.sent: dict[str, float] = {}
        # One client of one connection per request in flight: httpcore's pool looks at
        # every connection for every request (a pool of 64 cost this process more CPU per
        # turn than the API), and a client that queues thousands of requests spends its
        # CPU on the queue, not on the API.
        self._all = [
            httpx.AsyncClient(
                base_url=base_url,
                headers={"Authorization": f"Bearer {key}"},
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                timeout=httpx.Timeout(60.0, pool=None),
            )
            for _ in range(connections)
        ]
        self._clients: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for client in self._all:
            self._clients.put_nowait(client)
        self.retries = 0

    async def start(self, folder: Path) -> None:
        return None

    async def receive(self, session: str, text: str) -> None:
        body = {"agent": AGENT, "customer": session, "client_message_id": text, "text": text}
        client = await self._clients.get()
        try:
            self.sent[text] = time.perf_counter()
            try:
                response = await self._post(client, body)
            except httpx.HTTPError as exc:
                self._refused(text, repr(exc))
                return
        finally:
            self._clients.put_nowait(client)
        if not response.is_success:
            self._refused(text, f"{response.status_code} {response.text[:200]}")
            return
        self.marks.acked[text] = time.perf_counter()

    async def _post(self, client: httpx.AsyncClient, body: dict[str, str]) -> httpx.Response:
        """One retry after a transport failure (a keep-alive connection the server closed
        as the request left): safe, the ``client_message_id`` makes it a duplicate."""
        try:
            return await client.post("/v1/messages", json=body)
        except httpx.TransportError:
            self.retries += 1
            return await client.post("/v1/messages", json=body)

    def _refused(self, text: str, why: str) -> None:
        """Not acknowledged: recorded (the run is then reported as invalid), not awaited."""
        self.rejected.append(f"{text}: {why}")
        waiter = self.marks.waiters.pop(text, None)
        if waiter is not None:
            waiter.set()

    async def stop(self) -> None:
        for client in self._all:
            await client.aclose()


@dataclass(slots=True)
class Evidence:
    """What the distributed processes did besides the figures."""

    deliveries: int = 0
    duplicates: int = 0
    unreadable: int = 0
    refused: int = 0
    post_retries: int = 0
    """POSTs sent again after a transport failure (deduplicated by the API)."""
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
    await asyncio.to_thread(run_acf, ["db", "upgrade"], env)
    marks = Marks()
    sink = Sink(marks)
    sink_port = await sink.start()
    config = _config(folder, sink_port)
    try:  # the key's tenant must be in the configuration the processes serve
        created = await asyncio.to_thread(
            run_acf, ["keys", "create", "--tenant", TENANT, "--config", str(config)], env
        )
    except BaseException:
        await sink.stop()
        raise
    key = created.strip().splitlines()[0].strip()  # stdout holds the key alone
    api_port = free_port()
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
        await wait_ready(processes, f"http://127.0.0.1:{api_port}", names)
        pids = {label: process.pid for label, process in processes.running.items()}
        figures = await measure_figures(
            subject,
            turns,
            sessions,
            timeout_s,
            folder,
            pids,
            settle=lambda: asyncio.to_thread(analyze, database_url),
        )
        processes.check_alive()
        await asyncio.sleep(0.5)  # late duplicates, if any, reach the sink
        _details(subject, turns, sessions, evidence)
        evidence.stored = await asyncio.to_thread(stored_rows, database_url)
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
            evidence.post_retries = subject.retries
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
