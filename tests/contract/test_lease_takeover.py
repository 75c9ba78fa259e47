"""A live holder that cannot renew is taken over by another runtime: the new holder runs the
turn, and the fence refuses the old holder's commit and its late renewal (issue 17).

On PostgreSQL the two runtimes have their own stores (connection pools): two processes as
the database sees them. On SQLite, where one process holds the file, they share the store
under two holder names. Holder A's renewals wait at a gate (an injected delay in lease
renewal): A is alive, its pipeline still running, while its lease expires.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from acf.adapters.memory.wakeup import InProcessWakeUps
from acf.adapters.postgres import open_pg_store
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind
from acf.domain.ids import SessionId, TenantId
from acf.domain.messages import NewMessage
from acf.domain.policy import AccumulationMode, ChannelPolicy
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.domain.turns import TurnPhase
from acf.ports.agent_binding import AgentBinding
from acf.ports.event_store import EventQuery
from acf.ports.lease import Lease, SessionLease
from acf.ports.pipeline import TurnContext
from acf.ports.store import Store
from acf.service.agents import Agents
from acf.service.ingress import Ingress
from acf.service.lease_keeper import LeaseSettings
from acf.service.runtime import Runtime, RuntimeSettings
from acf.testing import VirtualClock
from acf.testing.channel import RecordingChannel
from tests.contract.event_horizon import readable

LEASE = LeaseSettings(ttl_ms=1_000, renew_every_ms=300)
KEY = SessionKey("t1", "a1", "alice", Channel.WEB)


class GatedRenewals:
    """The store's lease, whose renewals wait until ``gate`` opens."""

    def __init__(self, inner: SessionLease) -> None:
        self._inner = inner
        self.gate = asyncio.Event()
        self.refused = 0

    async def acquire(
        self, tenant: TenantId, session_id: SessionId, holder: str, ttl_ms: int
    ) -> Lease | None:
        return await self._inner.acquire(tenant, session_id, holder, ttl_ms)

    async def renew(self, lease: Lease, ttl_ms: int) -> Lease | None:
        await self.gate.wait()
        renewed = await self._inner.renew(lease, ttl_ms)
        self.refused += renewed is None
        return renewed

    async def release(self, lease: Lease) -> None:
        await self._inner.release(lease)

    async def current(self, tenant: TenantId, session_id: SessionId) -> Lease | None:
        return await self._inner.current(tenant, session_id)


class WithLease:
    """``store`` with another lease port (the rest is the store's own)."""

    def __init__(self, store: Store, lease: SessionLease) -> None:
        self._store = store
        self.lease = lease

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class Pipeline:
    def __init__(self, name: str, hold: asyncio.Event | None = None) -> None:
        self.name, self.version = name, "1"
        self.started = asyncio.Event()
        self._hold = hold

    async def run(self, ctx: TurnContext) -> PipelineResult:
        self.started.set()
        if self._hold is not None:
            await self._hold.wait()
        return PipelineResult.reply(f"from {self.name} (attempt {ctx.attempt})")


def _agents(pipeline: Pipeline) -> Agents:
    settings = AgentSettings(channel_policies={Channel.WEB: ChannelPolicy(AccumulationMode.OFF)})
    return Agents({"t1": {"a1": AgentBinding(pipeline, settings)}})


async def _until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    for _ in range(2_000):
        if await check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


@asynccontextmanager
async def _second_store(
    request: pytest.FixtureRequest, backend: str, store: Store, clock: VirtualClock
) -> AsyncIterator[Store]:
    if backend != "postgresql":
        yield store
        return
    other = await open_pg_store(
        request.getfixturevalue("postgres_url"), clock, pool_size=2, caller_clock=True
    )
    try:
        yield other
    finally:
        await other.close()


async def test_a_slow_holder_taken_over_is_refused_and_the_new_holder_answers(
    request: pytest.FixtureRequest, backend: str, store: Store, clock: VirtualClock
) -> None:
    gated = GatedRenewals(store.lease)
    release_a = asyncio.Event()
    pipeline_a, pipeline_b = Pipeline("A", release_a), Pipeline("B")
    sent_a, sent_b = RecordingChannel(clock), RecordingChannel(clock)
    settings = RuntimeSettings(lease=LEASE, slots=None)
    wakeups = InProcessWakeUps()
    store_a = cast(Store, WithLease(store, gated))
    runtime_a = Runtime(store_a, clock, _agents(pipeline_a), wakeups, sent_a, settings=settings)
    await runtime_a.start()
    async with _second_store(request, backend, store, clock) as store_b:
        runtime_b = Runtime(
            store_b, clock, _agents(pipeline_b), InProcessWakeUps(), sent_b, settings=settings
        )
        try:
            ingress = Ingress(_agents(pipeline_a), store.uow, wakeups, clock)
            accepted = await ingress.accept(NewMessage(KEY, "m1", text="where is my order?"))
            sid = accepted.session_id
            await asyncio.wait_for(pipeline_a.started.wait(), 10)

            clock.advance(LEASE.ttl_ms + 500)  # A cannot renew: its lease expires
            await runtime_b.start()  # B's recovery finds the RUNNING turn unheld
            await _until("B's pipeline ran", lambda: _true(pipeline_b.started.is_set()))
            await _until("B committed", lambda: _committed(store, sid))
            lease = await store.lease.current("t1", sid)
            assert lease is None or lease.holder == runtime_b.holder

            release_a.set()  # A finishes and tries to commit: the fence refuses it
            await _until("A saw its lease lost", lambda: _lost(store, sid, runtime_a.holder))
            gated.gate.set()  # A's late renewal: refused too (the fence changed)
            await _until("B delivered", lambda: _true(bool(sent_b.sends)))
        finally:
            await runtime_b.stop()
            await runtime_a.stop()

    turns = await store.turns.list_turns("t1", sid)
    assert [t.phase for t in turns] == [TurnPhase.COMMITTED]
    record = await store.turns.get_record("t1", turns[0].turn_id)
    assert record is not None
    # A take-over counts as an attempt (the old holder stopped or stalled past its TTL).
    assert list(record.replies) == ["from B (attempt 2)"]
    assert sent_a.replies_for() == []
    rows = await store.outbox.for_session("t1", sid)
    assert [r.payload["text"] for r in rows] == ["from B (attempt 2)"]
    await readable(store)
    events = await store.events.query("t1", EventQuery(session_id=sid))
    kinds = [e.kind for e in events]
    assert EventKind.TURN_FAILED not in kinds
    assert kinds.count(EventKind.TURN_COMMITTED) == 1


async def _true(value: bool) -> bool:
    return value


async def _committed(store: Store, sid: SessionId) -> bool:
    turns = await store.turns.list_turns("t1", sid)
    return any(t.phase is TurnPhase.COMMITTED for t in turns)


async def _lost(store: Store, sid: SessionId, holder: str) -> bool:
    lost = await store.events.query("t1", EventQuery(session_id=sid, kinds=(EventKind.LEASE_LOST,)))
    return any(e.data.get("holder") == holder for e in lost)
