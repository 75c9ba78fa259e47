"""People in the loop, end to end in the distributed mode (issue #22): an API process and two
workers (`acf serve --role api|worker`) on a private PostgreSQL database, the customer on
the API, their replies POSTed to the tenant's web delivery URL (a fake provider on
loopback), the operator on the API with a key made by `acf keys create --scope operator`.

- The rules agent hands the session off: its reply and the handoff notice reach the
  customer, the notice once; what the customer writes next is stored (202 ``held: human``)
  and not answered by the agent; an operator claims the session and replies over HTTP (an
  Idempotency-Key retry sends nothing twice), then hands it back with a note; the agent
  answers the customer's next message, and only that one.
- A customer put on the block list over HTTP: their messages are stored (202 ``held:
  blocked``) and dropped by a DROP turn, never answered.
- Every worker killed (SIGKILL) with a session in human mode and messages arriving while
  none runs: the next worker's recovery answers the agent-mode session only.
- With two workers watching, a handoff past its SLA is marked breached once and the
  customer is told they still wait once.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from acf.adapters.postgres.store import PgStore
from acf.domain.events import EventKind
from acf.domain.ids import new_id
from acf.domain.modes import SessionMode, TurnKind
from acf.domain.turns import TurnPhase
from acf.ports.event_store import EventQuery
from tests.chaos.fakes import FakeProvider
from tests.integration.fleet import Fleet, acf_env, eventually, fleet, make_key

pytestmark = pytest.mark.postgres

TENANT = "acme"
AGENT = "support"
NOTICE = "Thanks for your patience: a colleague will take it from here."
HANDED_OVER = "Let me get a colleague."
NOTE = "Refund for order 7 approved; the customer may ask about delivery."
SLA_TENANT = "globex"
STILL_WAITING = "We haven't forgotten you."
RECOVERY_S = 1.0
"""The workers' recovery scan interval (``ACF_RECOVERY_INTERVAL_MS``'s default)."""


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
    # globex's handoffs breach their SLA at once, and its customers are told they still wait
    impatient = {"notice": NOTICE, "sla_s": 1, "still_waiting_after_s": 1}
    impatient["still_waiting_notice"] = STILL_WAITING
    return {"version": 1, "tenants": {TENANT: tenant, SLA_TENANT: {**tenant, "handoff": impatient}}}


def lookup(session_id: str) -> EventQuery:
    """The session's events committed by now (a lookup: any transaction open on the shared
    server, in another test's database too, holds back the events read in commit order)."""
    return EventQuery(session_id=session_id, limit=1000, in_commit_order=False)


@pytest.fixture
def env(database: str) -> dict[str, str]:
    return acf_env(database)


@pytest.fixture
def config_path(provider: FakeProvider, tmp_path: Path) -> Path:
    path = tmp_path / "acf.yaml"
    path.write_text(yaml.safe_dump(config(f"{provider.url}/deliver")), encoding="utf-8")
    return path


@pytest.fixture
async def running(config_path: Path, env: dict[str, str], tmp_path: Path) -> AsyncIterator[Fleet]:
    """One API process and two workers on ``database``."""
    async with fleet(config_path, env, tmp_path, workers=2) as started:
        yield started


def keys(running: Fleet, tenant: str = TENANT) -> tuple[dict[str, str], dict[str, str]]:
    """The headers of a customer-facing key and of an operator's key of ``tenant``."""
    customer = make_key(running.config_path, running.env, tenant, "api", "web-chat")
    operator = make_key(running.config_path, running.env, tenant, "operator", "Alice")
    return {"Authorization": f"Bearer {customer}"}, {"Authorization": f"Bearer {operator}"}


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


async def committed(
    store: PgStore, session_id: str, tenant: str = TENANT
) -> list[tuple[TurnKind, int, int]]:
    turns = await store.turns.list_turns(tenant, session_id)
    return [(t.kind, t.from_seq, t.to_seq) for t in turns if t.phase is TurnPhase.COMMITTED]


async def test_handoff_operator_reply_and_resume_across_processes(
    running: Fleet, provider: FakeProvider, store: PgStore
) -> None:
    bearer, desk = keys(running)
    api = running.url
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
    running: Fleet, provider: FakeProvider, store: PgStore
) -> None:
    bearer, desk = keys(running)
    api = running.url
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


async def test_workers_killed_in_human_mode_recover_without_an_agent_turn(
    running: Fleet, provider: FakeProvider, store: PgStore
) -> None:
    """kill -9 of every worker, messages arriving while none runs: the new worker's recovery
    answers the agent-mode session and starts no agent turn in the human-mode one."""
    bearer, _desk = keys(running)
    async with httpx.AsyncClient(base_url=running.url, headers=bearer, timeout=10) as client:
        alice, bob = Customer(client, "alice"), Customer(client, "bob")
        sid = (await alice.says("I want a human, please."))["session_id"]
        assert await delivered(provider, "alice", 2) == [HANDED_OVER, NOTICE]
        for worker in running.processes[1:]:
            running.kill(worker)
        held = await alice.says("hello? anyone there?")
        assert held.get("held") == "human"
        other = (await bob.says("hi"))["session_id"]
        await running.start("worker")
        # The new worker's recovery found bob's message (its wake-up went to no one) ...
        assert await delivered(provider, "bob", 1) == ["You said: hi"]
        assert await committed(store, other) == [(TurnKind.AGENT, 0, 1)]

    # ... and, at that scan and the ones since, left alice's to the people: no turn, nothing sent.
    await asyncio.sleep(3 * RECOVERY_S)
    session = await store.sessions.get(TENANT, sid)
    assert session is not None and session.mode is SessionMode.HUMAN
    assert (session.consumed_seq, session.last_seq) == (1, 2)
    assert await committed(store, sid) == [(TurnKind.AGENT, 0, 1)]
    turns = await store.turns.list_turns(TENANT, sid)
    assert [t.phase for t in turns] == [TurnPhase.COMMITTED]
    assert received(provider, "alice") == [HANDED_OVER, NOTICE]


async def test_an_sla_breach_and_the_still_waiting_notice_happen_once_with_two_workers(
    running: Fleet, provider: FakeProvider, store: PgStore
) -> None:
    """End to end across processes: globex's handoff is due at once, both workers' mode
    watches see it, and it is marked breached once and its notice sent once (the race of
    two watches on one handoff is tested with two stores in tests/runtime/test_mode_watch.py)."""
    bearer, _desk = keys(running, SLA_TENANT)
    async with httpx.AsyncClient(base_url=running.url, headers=bearer, timeout=10) as client:
        carol = Customer(client, "carol")
        sid = (await carol.says("I want a human, please."))["session_id"]
        assert await delivered(provider, "carol", 3) == [HANDED_OVER, NOTICE, STILL_WAITING]
    assert received(provider, "carol") == [HANDED_OVER, NOTICE, STILL_WAITING]
    watched = (EventKind.HANDOFF_SLA_BREACHED, EventKind.HANDOFF_STILL_WAITING)
    events = await store.events.query(SLA_TENANT, replace(lookup(sid), kinds=watched))
    assert sorted(e.kind for e in events) == sorted(watched)
    session = await store.sessions.get(SLA_TENANT, sid)
    assert session is not None and session.mode is SessionMode.HUMAN
