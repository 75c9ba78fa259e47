"""The floor of the distributed benchmark: HTTP in, HTTP out, nothing stored.

One process on the stack acf's API and relay stand on (FastAPI on uvicorn with uvloop and
httptools, pydantic; httpx on aiohttp's pool, :mod:`acf.adapters.outbound_http`) takes the
benchmark's ``POST /v1/messages``, answers 202, and posts the reply to the sink at once: no
database, no lease, no turn. What it costs per turn is what any HTTP-in, HTTP-out system
built on that stack costs at least, measured in the same run as acf (so the ratio holds on
a noisy machine), and the turns per second the machine's CPUs allow at that cost bound
every such system's throughput.

``python -m acf.bench.floor --port N --sink URL`` serves it; :func:`floor` starts it as a
subprocess and measures it like acf.
"""

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from acf.adapters.outbound_http import outbound_client
from acf.bench.cluster import DistributedSubject
from acf.bench.figures import Figures, measure_figures
from acf.bench.marks import Marks
from acf.bench.processes import Processes, free_port
from acf.bench.sink import SEPARATOR, Sink

NAME = "floor: HTTP in → HTTP out, nothing stored (FastAPI, httpx; 1 process)"
KEY = "floor-key"
_SENDS = 16
"""Deliveries in flight at once, as acf's relay bounds its provider calls per tenant."""


def app(sink_url: str) -> Any:
    """The floor's ASGI app: the body acf's API takes, a bearer key, a 202, a delivery."""
    from fastapi import FastAPI, Header, HTTPException
    from pydantic import BaseModel

    class Message(BaseModel):
        agent: str
        customer: str
        client_message_id: str
        text: str

    api = FastAPI()
    state: dict[str, Any] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def deliver(message: Message) -> None:
        if "http" not in state:
            state["http"] = outbound_client(max_connections=_SENDS)
            state["sends"] = asyncio.Semaphore(_SENDS)
        started = time.perf_counter()
        text = f"{message.text}{SEPARATOR}{started!r}{SEPARATOR}{time.perf_counter()!r}"
        body = {"agent": message.agent, "customer": message.customer, "payload": {"text": text}}
        async with state["sends"]:
            await state["http"].post(sink_url, json=body)

    @api.post("/v1/messages", status_code=202)
    async def receive(message: Message, authorization: str = Header("")) -> dict[str, str]:
        if authorization != f"Bearer {KEY}":
            raise HTTPException(401, "a valid API key is required")
        task = asyncio.get_running_loop().create_task(deliver(message))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return {"message_id": message.client_message_id}

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return api


async def floor(
    folder: Path, turns: int, sessions: int, connections: int, timeout_s: float
) -> Figures:
    """Start the floor process and measure it with the client and sink acf is measured with."""
    marks = Marks()
    sink = Sink(marks)
    sink_port = await sink.start()
    port = free_port()
    processes = Processes(folder, dict(os.environ))
    subject = DistributedSubject(f"http://127.0.0.1:{port}", KEY, marks, connections)
    subject.name = NAME
    try:
        processes.spawn(
            "floor",
            ["--port", str(port), "--sink", f"http://127.0.0.1:{sink_port}/deliver"],
            command=[sys.executable, "-m", "acf.bench.floor"],
        )
        await _ready(processes, f"http://127.0.0.1:{port}/healthz")
        pid = processes.running["floor"].pid
        figures = await measure_figures(subject, turns, sessions, timeout_s, folder, {"floor": pid})
        processes.check_alive()
    finally:
        try:
            await asyncio.to_thread(processes.stop)  # first: its connections to the sink end
        finally:
            await sink.stop()
    if subject.rejected:
        raise RuntimeError(f"floor: {len(subject.rejected)} POSTs refused: {subject.rejected[:3]}")
    return figures


async def _ready(processes: Processes, url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            processes.check_alive()
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the floor process did not answer in {timeout_s:.0f} s")
            await asyncio.sleep(0.1)


def ceiling_turns_per_s(figures: Figures, cpus: int) -> float:
    """The turns per second ``cpus`` fully busy CPUs allow at ``figures``' CPU per turn."""
    total = figures.cpu_ms_per_turn.get("total", 0.0)
    return cpus * 1000.0 / total if total > 0 else float("inf")


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn
    import uvloop

    p = argparse.ArgumentParser(prog="python -m acf.bench.floor", description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sink", required=True, help="where replies are posted")
    args = p.parse_args(argv)
    config = uvicorn.Config(
        app(args.sink),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off",
        http="httptools",
        loop="none",
    )
    uvloop.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
