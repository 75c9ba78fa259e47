"""People in the loop, end to end in the distributed mode (issue #22): an API process and a
worker (`acf serve --role api|worker`) on a private PostgreSQL database, the customer on
the API, their replies POSTed to the tenant's web delivery URL (a fake provider on
loopback), the operator on the API with a key made by `acf keys create --scope operator`.

- The rules agent hands the session off: its reply and the handoff notice reach the
  customer, the notice once; what the customer writes next is stored (202 ``held: human``)
  and not answered by the agent; an operator claims the session and replies over HTTP (an
  Idempotency-Key retry sends nothing twice), then hands it back with a note; the agent
  answers the customer's next message, and only that one.
- A customer put on the block list over HTTP: their messages are stored (202 ``held:
  blocked``) and dropped by a DROP turn, never answered.
"""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from acf.adapters.memory.clock import SystemClock
from acf.adapters.postgres import open_pg_store
from acf.adapters.postgres.store import PgStore, libpq_url
from acf.adapters.sql import migrate
from acf.domain.events import EventKind
from acf.domain.ids import new_id
from acf.domain.modes import SessionMode, TurnKind
from acf.domain.turns import TurnPhase
from acf.ports.event_store import EventQuery
from tests.chaos.fakes import FakeProvider
from tests.http.conftest import free_port
from tests.integration.services import require_postgres, temporary_database

pytestmark = pytest.mark.postgres

ACF = [sys.executable, "-c", "from acf.entrypoints.cli import main; main()"]
TENANT = "acme"
AGENT = "support"
WAIT_S = 30.0
"""How long a step may take at most: a bound, not a timing."""
POLL_S = 0.05
NOTICE = "Thanks for your patience: a colleague will take it from here."
HANDED_OVER = "Let me get a colleague."
NOTE = "Refund for order 7 approved; the customer may ask about delivery."


def config(delivery_url: str) -> dict[str, Any]:
    rules = {
        "fallback": "Sorry, I didn't get that.",
        "rules": [
            {
                "name": "person",
                "lane": "people",
                "match": {"keywords": ["human"]},
                "reply": HANDED_OVER,
                "handoff": "the customer asked for a person",
            },
            {
                "name": "echo",
                "lane": "echo",
                "match": {"regex": r"(?s)(?P<said>\S.*)"},
                "reply": "You said: {said}",
            },
        ],
    }
    tenant = {
        "web_delivery_url": delivery_url,
        "limits": {"accepted_messages": "1000/second"},
        "channels": {"web": {"mode": "off"}},
        "handoff": {"notice": NOTICE, "sla_s": 3600, "still_waiting_after_s": 3600},
        "agents": {AGENT: {"pipeline": {"kind": "rules", "rules": rules}}},
    }
    return {"version": 1, "tenants": {TENANT: tenant}}


@pytest.fixture
def database() -> Iterator[str]:
    require_postgres()
    with temporary_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def lookup(session_id: str) -> EventQuery:
    """The session's events committed by now (a lookup: any transaction open on the shared
    server, in another test's database too, holds back the events read in commit order)."""
    return EventQuery(session_id=session_id, limit=1000, in_commit_order=False)


def _env(database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACF_")}
    env["ACF_DATABASE_URL"] = libpq_url(database)
    env["ACF_LOG_LEVEL"] = "WARNING"
    return env


async def _started(process: subprocess.Popen[str], marker: str) -> None:
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), WAIT_S)
    assert marker in line, line


def make_key(config_path: Path, database: str, scope: str, name: str) -> str:
    """A key made as an operator makes one: `acf keys create` (printed once, on stdout)."""
    done = subprocess.run(
        [*ACF, "keys", "create", "--tenant", TENANT, "--name", name, "--scope", scope],
        env={**_env(database), "ACF_CONFIG": str(config_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"({scope}) for tenant {TENANT}" in done.stderr
    return done.stdout.strip()


@pytest.fixture
async def api(database: str, provider: FakeProvider, tmp_path: Path) -> AsyncIterator[str]:
    """One API process and one worker on ``database``; yields the API's base URL."""
    config_path = tmp_path / "acf.yaml"
    config_path.write_text(yaml.safe_dump(config(f"{provider.url}/deliver")), encoding="utf-8")
    port = free_port()
    started: list[subprocess.Popen[str]] = []

    def start(role: str, *args: str) -> subprocess.Popen[str]:
        # Each process's log in a file of the test's directory (pytest keeps the last ones).
        with (tmp_path / f"{role}.log").open("w") as log:
            process = subprocess.Popen(
                [*ACF, "serve", "--config", str(config_path), "--role", role, *args],
                env=_env(database),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        started.append(process)
        return process

    try:
        await _started(start("api", "--port", str(port)), "acf is serving")
        await _started(start("worker"), "acf worker running")
        yield f"http://127.0.0.1:{port}"
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


@pytest.fixture
async def store(database: str) -> AsyncIterator[PgStore]:
    opened = await open_pg_store(database, SystemClock(), pool_size=2)
    try:
        yield opened
    finally:
        await opened.close()


async def eventually(what: str, done: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``done`` until it holds, at most ``WAIT_S``."""
    try:
        async with asyncio.timeout(WAIT_S):
            while not await done():  # noqa: ASYNC110 - polling other processes' work
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT_S} s: {what}") from None


def received(provider: FakeProvider, customer: str) -> list[str]:
    return [str(r["text"]) for r in provider.snapshot() if r["customer"] == customer]


async def delivered(provider: FakeProvider, customer: str, count: int) -> list[str]:
    """The texts the customer received, once there are at least ``count``."""

    async def enough() -> bool:
        return len(received(provider, customer)) >= count

    await eventually(f"{count} replies delivered to {customer}", enough)
    return received(provider, customer)


class Customer:
    def __init__(self, client: httpx.AsyncClient, name: str) -> None:
        self.client = client
        self.name = name

    async def says(self, text: str) -> dict[str, Any]:
        message = {"agent": AGENT, "customer": self.name, "client_message_id": new_id()}
        posted = await self.client.post("/v1/messages", json={**message, "text": text})
        assert posted.status_code == 202, posted.text
        body: dict[str, Any] = posted.json()
        return body


async def committed(store: PgStore, session_id: str) -> list[tuple[TurnKind, int, int]]:
    turns = await store.turns.list_turns(TENANT, session_id)
    return [(t.kind, t.from_seq, t.to_seq) for t in turns if t.phase is TurnPhase.COMMITTED]


async def test_handoff_operator_reply_and_resume_across_processes(
    api: str, database: str, provider: FakeProvider, store: PgStore, tmp_path: Path
) -> None:
    config_path = tmp_path / "acf.yaml"
    customer_key = make_key(config_path, database, "api", "web-chat")
    operator_key = make_key(config_path, database, "operator", "Alice")
    bearer = {"Authorization": f"Bearer {customer_key}"}
    desk = {"Authorization": f"Bearer {operator_key}"}
    async with (
        httpx.AsyncClient(base_url=api, headers=bearer, timeout=10) as client,
        httpx.AsyncClient(base_url=api, headers=desk, timeout=10) as operator,
    ):
        alice = Customer(client, "alice")
        first = await alice.says("I want a human, please.")
        sid = first["session_id"]
        assert await delivered(provider, "alice", 2) == [HANDED_OVER, NOTICE]
        session = await store.sessions.get(TENANT, sid)
        assert session is not None and session.mode is SessionMode.HUMAN

        held = await alice.says("hello? anyone there?")
        assert held["seq"] == 2 and held.get("held") == "human"
        # The customer's key cannot act as the operator.
        refused = await client.post(f"/v1/sessions/{sid}/claim", json={})
        assert refused.status_code == 403, refused.text

        claimed = await operator.post(f"/v1/sessions/{sid}/claim", json={})
        assert claimed.status_code == 200, claimed.text
        reply = {"text": "Hi, I'm Alice. Your refund for order 7 is approved."}
        headers = {"Idempotency-Key": f"reply-{new_id()}"}
        sent = await operator.post(
            f"/v1/sessions/{sid}/operator-messages", json=reply, headers=headers
        )
        assert sent.status_code == 202, sent.text
        assert sent.json()["answered_through_seq"] == 2
        again = await operator.post(
            f"/v1/sessions/{sid}/operator-messages", json=reply, headers=headers
        )
        assert again.status_code == 202 and again.json() == sent.json()
        assert (await delivered(provider, "alice", 3))[2:] == [reply["text"]]

        resumed = await operator.post(f"/v1/sessions/{sid}/resume", json={"note": NOTE})
        assert resumed.status_code == 200, resumed.text
        after = await alice.says("thanks, when does it arrive?")
        assert after["seq"] == 3 and after.get("held") is None
        await delivered(provider, "alice", 4)

    assert received(provider, "alice") == [
        HANDED_OVER,
        NOTICE,
        reply["text"],
        "You said: thanks, when does it arrive?",
    ]
    assert await committed(store, sid) == [
        (TurnKind.AGENT, 0, 1),
        (TurnKind.HUMAN, 1, 2),
        (TurnKind.AGENT, 2, 3),
    ]
    session = await store.sessions.get(TENANT, sid)
    assert session is not None and session.mode is SessionMode.AGENT
    assert session.state["meta"].get("handover") is None  # the agent's commit cleared it
    kinds = [
        e.kind
        for e in await store.events.query(TENANT, lookup(sid))
        if e.kind
        in (
            EventKind.SESSION_HANDED_OFF,
            EventKind.HANDOFF_CLAIMED,
            EventKind.OPERATOR_REPLIED,
            EventKind.SESSION_RESUMED,
        )
    ]
    assert kinds == [
        EventKind.SESSION_HANDED_OFF,
        EventKind.HANDOFF_CLAIMED,
        EventKind.OPERATOR_REPLIED,
        EventKind.SESSION_RESUMED,
    ]


async def test_a_blocked_customers_messages_are_stored_and_dropped(
    api: str, database: str, provider: FakeProvider, store: PgStore, tmp_path: Path
) -> None:
    config_path = tmp_path / "acf.yaml"
    bearer = {"Authorization": f"Bearer {make_key(config_path, database, 'api', 'web-chat')}"}
    desk = {"Authorization": f"Bearer {make_key(config_path, database, 'operator', 'Alice')}"}
    async with (
        httpx.AsyncClient(base_url=api, headers=bearer, timeout=10) as client,
        httpx.AsyncClient(base_url=api, headers=desk, timeout=10) as operator,
    ):
        bob = Customer(client, "bob")
        sid = (await bob.says("hi there"))["session_id"]
        assert await delivered(provider, "bob", 1) == ["You said: hi there"]
        blocked = await operator.post(
            "/v1/blocks", json={"channel": "web", "customer": "bob", "reason": "abusive"}
        )
        assert blocked.status_code == 201, blocked.text
        for n, text in enumerate(("you are useless", "answer me!"), start=2):
            held = await bob.says(text)
            assert held["session_id"] == sid and held["seq"] == n
            assert held.get("held") == "blocked"

        async def dropped() -> bool:
            session = await store.sessions.get(TENANT, sid)
            return session is not None and session.consumed_seq == 3

        await eventually("bob's messages dropped", dropped)

    turns = await committed(store, sid)
    assert turns[0] == (TurnKind.AGENT, 0, 1)
    assert {kind for kind, _, _ in turns[1:]} == {TurnKind.DROP}
    assert turns[1][1] == 1 and turns[-1][2] == 3
    assert received(provider, "bob") == ["You said: hi there"]
    session = await store.sessions.get(TENANT, sid)
    assert session is not None and session.mode is SessionMode.BLOCKED
    drops = await store.events.query(
        TENANT,
        replace(lookup(sid), kinds=(EventKind.ABUSE_MESSAGES_DROPPED,)),
    )
    assert drops
    assert not (await store.outbox.for_session(TENANT, sid))[1:]  # no reply but the first
