"""The pieces of the distributed benchmark that run in a second (the whole run starts three
acf processes and takes far longer: `make bench-distributed`, figures in docs/benchmarks.md).

Timings are not asserted: machines are shared and noisy.
"""

import asyncio
from pathlib import Path

import httpx
import psycopg

from acf.bench.databases import temporary_databases
from acf.bench.distributed import factory
from acf.bench.floor import KEY, NAME, app, ceiling_turns_per_s, floor
from acf.bench.marks import Marks
from acf.bench.sink import SEPARATOR, Sink
from acf.ports.pipeline import Pipeline
from tests.integration.services import postgres_admin_dsn, require_postgres


def test_the_factory_gives_a_pipeline() -> None:
    assert isinstance(factory(), Pipeline)


async def test_the_sink_records_the_marks_carried_by_a_reply() -> None:
    marks = Marks()
    sink = Sink(marks)
    port = await sink.start()
    try:
        waiter = marks.expect("hello")
        async with httpx.AsyncClient() as http:
            for _ in range(2):  # the second is a duplicate delivery
                body = {
                    "tenant": "bench",
                    "agent": "echo",
                    "customer": "c",
                    "outbox_id": "o1",
                    "payload": {"text": f"hello{SEPARATOR}1.5{SEPARATOR}2.5"},
                }
                response = await http.post(f"http://127.0.0.1:{port}/deliver", json=body)
                assert response.status_code == 200
        await asyncio.wait_for(waiter.wait(), 5)
    finally:
        await sink.stop()
    assert marks.started["hello"] == 1.5
    assert marks.ended["hello"] == 2.5
    assert "hello" in marks.delivered
    assert (sink.deliveries, sink.duplicates, sink.unreadable) == (2, 1, 0)


def test_temporary_databases_are_dropped() -> None:
    require_postgres()
    admin = postgres_admin_dsn()
    with temporary_databases(admin, 2) as urls:
        names = [url.rsplit("/", 1)[1] for url in urls]
        with psycopg.connect(urls[0].replace("+psycopg", "")) as conn:
            conn.execute("SELECT 1")
    with psycopg.connect(admin) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,)
        ).fetchall()
    assert rows == []


async def test_the_floor_answers_each_post_and_delivers_each_reply(tmp_path: Path) -> None:
    figures = await floor(tmp_path, turns=5, sessions=20, connections=4, timeout_s=60)
    assert figures.subject == NAME
    assert figures.turns_per_s > 0
    assert figures.cpu_ms_per_turn["floor"] > 0  # the floor process was charged
    assert figures.overhead.to_delivery_p50_ms > 0
    assert ceiling_turns_per_s(figures, 2) == 2000 / figures.cpu_ms_per_turn["total"]


async def test_the_floor_refuses_a_post_without_its_key() -> None:
    marks = Marks()
    sink = Sink(marks)
    port = await sink.start()
    transport = httpx.ASGITransport(app=app(f"http://127.0.0.1:{port}/deliver"))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://floor") as http:
            body = {"agent": "echo", "customer": "c", "client_message_id": "m", "text": "hi"}
            refused = await http.post("/v1/messages", json=body)
            bad = await http.post("/v1/messages", json={"text": "hi"}, headers=_KEY)
            waiter = marks.expect("hi")
            taken = await http.post("/v1/messages", json=body, headers=_KEY)
            await asyncio.wait_for(waiter.wait(), 5)
    finally:
        await sink.stop()
    assert refused.status_code == 401
    assert bad.status_code == 422
    assert taken.status_code == 202
    assert sink.deliveries == 1 and "hi" in marks.delivered


_KEY = {"Authorization": f"Bearer {KEY}"}
