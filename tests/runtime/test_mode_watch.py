"""The mode watch with two runtimes racing on one store (issue 22): on the machine's
PostgreSQL each runtime has a store of its own (two pools on one database), on SQLite they
share the file's. Both watches check at the same instants, side by side; what each does is
conditional in the store, so:

- an SLA breach is marked once per handoff (one ``handoff.sla_breached``, one count of
  ``acf_handoff_sla_breaches_total`` across the two processes);
- the "still waiting" notice is queued once per handoff (one outbox row, one event, one
  wake-up of the session), never for a claimed one;
- a cool-down that held nothing ends once; one that holds messages is woken, not ended (its
  driver releases them); an expired block is lifted once, by ``expiry``.

The runtimes are not started: ``ModeWatch.tick`` is the check their loop runs."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.postgres import open_pg_store
from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql import migrate, schema
from acf.adapters.sqlite import open_sqlite_store
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind
from acf.domain.handoff import HandoffPolicy, PeoplePolicy
from acf.domain.ids import SessionId, TenantId, new_id
from acf.domain.messages import NewMessage
from acf.domain.modes import SessionMode
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.observability.people_metrics import PeopleMetrics
from acf.ports.agent_binding import AgentBinding
from acf.ports.event_store import EventQuery
from acf.ports.firewall import BlockCustomer, LiftBlock
from acf.ports.handoffs import (
    ClaimHandoff,
    EnterHuman,
    HandoffSource,
    InboxState,
    MarkSlaBreached,
    MarkStillWaiting,
    Operator,
)
from acf.ports.message_log import AppendMessage
from acf.ports.pipeline import TurnContext
from acf.ports.session_modes import StartCooldown
from acf.ports.session_store import ConsumeRange
from acf.ports.store import Store
from acf.ports.tool_registry import ToolRegistry
from acf.service.agents import Agents
from acf.service.mode_watch import ModeWatch, ModeWatchSettings
from acf.service.runtime import Runtime, RuntimeSettings
from acf.testing import VirtualClock
from acf.testing.channel import RecordingChannel
from tests.integration.services import require_postgres, temporary_database

TENANT: TenantId = "t1"
SLA_MS = 60_000
STILL_MS = 120_000
NOTICE = "We haven't forgotten you."
POLICY = PeoplePolicy(
    HandoffPolicy(sla_ms=SLA_MS, still_waiting_after_ms=STILL_MS, still_waiting_notice=NOTICE)
)


class Echo:
    name = "echo"
    version = "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        return PipelineResult.reply("echo")


class CountedWakeUps(InProcessWakeUps):
    """Wake-ups that remember every session woken (repeats included)."""

    def __init__(self) -> None:
        super().__init__()
        self.woken: list[SessionId] = []

    async def notify(self, tenant: TenantId, session_id: SessionId) -> None:
        self.woken.append(session_id)
        await super().notify(tenant, session_id)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    require_postgres()
    with temporary_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path, clock: VirtualClock
) -> AsyncIterator[tuple[Store, Store]]:
    """The two runtimes' stores: two on one PostgreSQL database, one SQLite file's twice."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(t.name for t in schema.metadata.sorted_tables)}")
        first = await open_pg_store(url, clock, pool_size=4, caller_clock=True)
        second = await open_pg_store(url, clock, pool_size=4, caller_clock=True)
        try:
            yield first, second
        finally:
            await first.close()
            await second.close()
        return
    shared = await open_sqlite_store(tmp_path / "acf.db", clock)
    try:
        yield shared, shared
    finally:
        await shared.close()


class Two:
    """Two runtimes (one per store), their wake-ups and metrics."""

    def __init__(
        self, stores: tuple[Store, Store], clock: VirtualClock, batch: int | None = None
    ) -> None:
        """``batch``: the watches' rows per step (the default's otherwise)."""
        self.store = stores[0]
        self.clock = clock
        self.start = clock.now_ms()
        self.wakeups = CountedWakeUps()
        self.metrics = [PeopleMetrics(CollectorRegistry()) for _ in stores]
        binding = AgentBinding(Echo(), AgentSettings(), ToolRegistry(()))
        agents = Agents({TENANT: {"a1": binding}})
        watch = ModeWatchSettings() if batch is None else ModeWatchSettings(batch=batch)
        settings = RuntimeSettings(mode_watch=watch)
        self.runtimes = [
            Runtime(
                store,
                clock,
                agents,
                self.wakeups,
                RecordingChannel(clock),
                people=lambda tenant: POLICY,
                people_metrics=metrics,
                settings=settings,
            )
            for store, metrics in zip(stores, self.metrics, strict=True)
        ]

    @property
    def watches(self) -> list[ModeWatch]:
        watches = [r.mode_watch for r in self.runtimes]
        assert all(w is not None for w in watches)
        return [w for w in watches if w is not None]

    async def race(self, after_ms: int) -> None:
        """Both watches check ``after_ms`` after the test's start, at once."""
        self.clock.advance_to(self.start + after_ms)
        await asyncio.gather(*(w.tick() for w in self.watches))

    def breaches(self) -> float:
        name, labels = "acf_handoff_sla_breaches_total", {"tenant": TENANT}
        return sum(m.registry.get_sample_value(name, labels) or 0 for m in self.metrics)

    def waiting(self) -> list[float | None]:
        labels = {"tenant": TENANT}
        return [m.registry.get_sample_value("acf_handoffs_waiting", labels) for m in self.metrics]

    async def session(self, customer: str) -> SessionId:
        key = SessionKey(TENANT, "a1", customer, Channel.WEB)
        op = AppendMessage(NewMessage(key, new_id(), text="help"), self.clock.now_ms(), "tr")
        return (await self.store.uow.commit(TENANT, [op])).get(op).session_id

    async def total(self, kind: EventKind) -> int:
        return len(
            await self.store.events.query(
                TENANT, EventQuery(kinds=(kind,), limit=1000, in_commit_order=False)
            )
        )

    async def count(self, kind: EventKind) -> dict[str, int]:
        found = await self.store.events.query(
            TENANT, EventQuery(kinds=(kind,), limit=1000, in_commit_order=False)
        )
        counts: dict[str, int] = {}
        for event in found:
            sid = event.correlation.session_id
            assert sid is not None
            counts[sid] = counts.get(sid, 0) + 1
        return counts


async def test_an_sla_breach_and_the_still_waiting_notice_happen_once_per_handoff(
    stores: tuple[Store, Store], clock: VirtualClock
) -> None:
    two = Two(stores, clock)
    start = two.start
    waiting = [await two.session(f"c{i}") for i in range(4)]
    claimed = await two.session("claimed")
    for sid in [*waiting, claimed]:
        op = EnterHuman(TENANT, sid, "asked", HandoffSource.PIPELINE, start, "tr")
        await two.store.uow.commit(TENANT, [op])
    claim = ClaimHandoff(TENANT, claimed, Operator("k1", "Alice"), 20 * STILL_MS, start, "tr")
    await two.store.uow.commit(TENANT, [claim])

    await two.race(SLA_MS - 1)
    assert await two.count(EventKind.HANDOFF_SLA_BREACHED) == {}
    assert two.waiting() == [4, 4]  # the claimed one is not waiting

    await two.race(SLA_MS)
    await two.race(SLA_MS + 5_000)
    assert await two.count(EventKind.HANDOFF_SLA_BREACHED) == dict.fromkeys(waiting, 1)
    assert two.breaches() == 4  # across the two processes: each breach counted once

    await two.race(STILL_MS)
    await two.race(STILL_MS + 5_000)
    await two.race(10 * STILL_MS)
    assert await two.count(EventKind.HANDOFF_STILL_WAITING) == dict.fromkeys(waiting, 1)
    assert await two.count(EventKind.HANDOFF_SLA_BREACHED) == dict.fromkeys(waiting, 1)
    assert two.breaches() == 4
    assert sorted(two.wakeups.woken) == sorted(waiting)  # each woken once, for its notice
    for sid in waiting:
        rows = await two.store.outbox.undelivered(TENANT, sid)
        assert [r.payload["text"] for r in rows] == [NOTICE]
        assert rows[0].payload.get("author") == "system"
    assert await two.store.outbox.undelivered(TENANT, claimed) == []  # claimed: none


async def test_cooldowns_end_once_and_held_messages_are_left_to_their_driver(
    stores: tuple[Store, Store], clock: VirtualClock
) -> None:
    two = Two(stores, clock)
    start = two.start
    empty = await two.session("empty")
    held = await two.session("held")
    ops = [
        StartCooldown(TENANT, sid, start + 60_000, "flood", "x", start, "tr")
        for sid in (empty, held)
    ]
    await two.store.uow.commit(TENANT, ops)
    # The empty session's message was answered before the cool-down: it holds nothing.
    await two.store.uow.commit(TENANT, [ConsumeRange(empty, 0, 1, True, start, mode=None)])

    await two.race(59_999)
    assert await two.count(EventKind.ABUSE_COOLDOWN_ENDED) == {}
    assert two.wakeups.woken == []

    await two.race(60_000)
    await two.race(65_000)
    assert await two.count(EventKind.ABUSE_COOLDOWN_ENDED) == {empty: 1}
    ended = await two.store.sessions.get(TENANT, empty)
    assert ended is not None and ended.mode is SessionMode.AGENT
    still = await two.store.sessions.get(TENANT, held)
    assert still is not None and still.mode is SessionMode.COOLDOWN  # its driver ends it
    assert set(two.wakeups.woken) == {held}  # woken at every check until its driver runs


async def test_an_expired_block_is_lifted_once(
    stores: tuple[Store, Store], clock: VirtualClock
) -> None:
    two = Two(stores, clock)
    start = two.start
    blocked = await two.session("spammer")
    op = BlockCustomer(
        TENANT, new_id(), Channel.WEB, "spammer", "spam", "k1", start, "tr", start + 30_000
    )
    placed = (await two.store.uow.commit(TENANT, [op])).get(op)

    await two.race(29_999)
    still = await two.store.blocks.get(TENANT, placed.block_id)
    assert still is not None and still.lifted_at_ms is None

    await two.race(30_000)
    await two.race(35_000)
    lifted = await two.store.blocks.get(TENANT, placed.block_id)
    assert lifted is not None and lifted.lifted_by == "expiry"
    assert lifted.lifted_at_ms == start + 30_000
    assert await two.total(EventKind.CUSTOMER_UNBLOCKED) == 1
    session = await two.store.sessions.get(TENANT, blocked)
    assert session is not None and session.mode is SessionMode.AGENT
    # Its message was not dropped yet: the session is woken (once) for the agent.
    assert two.wakeups.woken == [blocked]


async def test_a_backlog_larger_than_a_batch_is_worked_through_check_by_check(
    stores: tuple[Store, Store], clock: VirtualClock
) -> None:
    two = Two(stores, clock, batch=2)
    start = two.start
    # First, what needs nothing: two claimed handoffs, two cool-downs running for long.
    for n in range(2):
        sid = await two.session(f"claimed{n}")
        enter = EnterHuman(TENANT, sid, "asked", HandoffSource.PIPELINE, start - 10, "tr")
        alice = Operator("k1", "Alice")
        claim = ClaimHandoff(TENANT, sid, alice, 20 * STILL_MS, start - 10, "tr")
        await two.store.uow.commit(TENANT, [enter, claim])
        sid = await two.session(f"long{n}")
        cool = StartCooldown(TENANT, sid, start + 50 * STILL_MS, "flood", "x", start - 10, "tr")
        await two.store.uow.commit(TENANT, [cool])
    handed = [await two.session(f"h{i}") for i in range(5)]
    for n, sid in enumerate(handed):  # opened one after the other: due in that order
        op = EnterHuman(TENANT, sid, "asked", HandoffSource.PIPELINE, start + n, "tr")
        await two.store.uow.commit(TENANT, [op])
    cooling = [await two.session(f"c{i}") for i in range(5)]
    for n, sid in enumerate(cooling):
        op = StartCooldown(TENANT, sid, start + 1_000 + n, "flood", "x", start, "tr")
        await two.store.uow.commit(TENANT, [op, ConsumeRange(sid, 0, 1, True, start, mode=None)])

    await two.race(SLA_MS + 10)
    assert two.waiting() == [5, 5]  # counted, not read a batch at a time
    breached = await two.count(EventKind.HANDOFF_SLA_BREACHED)
    assert 2 <= len(breached) <= 4 and set(breached) <= set(handed[:4])  # the earliest first
    assert 2 <= await two.total(EventKind.ABUSE_COOLDOWN_ENDED) <= 4
    for _ in range(3):
        await two.race(SLA_MS + 20)
    assert await two.count(EventKind.HANDOFF_SLA_BREACHED) == dict.fromkeys(handed, 1)
    assert await two.count(EventKind.ABUSE_COOLDOWN_ENDED) == dict.fromkeys(cooling, 1)
    assert two.breaches() == 5


async def test_a_blocked_customer_is_never_told_to_wait_and_its_handoff_comes_back(
    stores: tuple[Store, Store], clock: VirtualClock
) -> None:
    two = Two(stores, clock)
    start = two.start
    sid = await two.session("abuser")
    enter = EnterHuman(TENANT, sid, "asked", HandoffSource.PIPELINE, start, "tr")
    await two.store.uow.commit(TENANT, [enter])
    op = BlockCustomer(TENANT, new_id(), Channel.WEB, "abuser", "abuse", "k1", start + 1, "tr")
    block = (await two.store.uow.commit(TENANT, [op])).get(op)

    await two.race(STILL_MS + 1)
    assert await two.total(EventKind.HANDOFF_STILL_WAITING) == 0
    assert await two.total(EventKind.HANDOFF_SLA_BREACHED) == 0
    assert await two.store.outbox.undelivered(TENANT, sid) == []
    assert two.waiting() == [0, 0]
    (entry,) = await two.store.handoffs.inbox(TENANT, InboxState.OPEN, clock.now_ms())
    assert entry.mode is SessionMode.BLOCKED  # shown with its mode
    # Asked directly, the ops refuse too (the watch is not the only writer).
    (handoff,) = [e.handoff for e in [entry]]
    sla = MarkSlaBreached(TENANT, handoff.handoff_id, clock.now_ms(), 1)
    still = MarkStillWaiting(TENANT, handoff.handoff_id, clock.now_ms(), NOTICE)
    results = await two.store.uow.commit(TENANT, [sla, still])
    assert (results.get(sla), results.get(still)) == (False, False)

    lift = LiftBlock(TENANT, block.block_id, "k1", start + STILL_MS + 2, "tr")
    await two.store.uow.commit(TENANT, [lift])
    session = await two.store.sessions.get(TENANT, sid)
    assert session is not None and session.mode is SessionMode.HUMAN
    await two.race(STILL_MS + 3)
    assert await two.count(EventKind.HANDOFF_STILL_WAITING) == {sid: 1}
    rows = await two.store.outbox.undelivered(TENANT, sid)
    assert [r.payload["text"] for r in rows] == [NOTICE]
