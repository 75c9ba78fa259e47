"""The idle-close sweep (``acf.service.idle_close``) over every backend: it closes what is due
and only that, under the session's lease and its fence, never over a lease someone holds,
a message that lands under it wins (the session stays open and is woken), and a session
whose configuration version this process cannot build is held, never closed by acf's
default timeout instead of its version's."""

from typing import Any

from acf.domain.events import EventKind
from acf.domain.ids import SessionId, TenantId
from acf.ports.checkpoints import NoCheckpoints
from acf.ports.config_versions import ConfigVersion, PromoteVersion
from acf.ports.event_store import EventQuery
from acf.ports.session_store import ConsumeRange, SessionStatus
from acf.ports.store import Store
from acf.service.agents import Agents
from acf.service.built_version import BuiltVersion
from acf.service.idle_close import IdleCloser, IdleCloseSettings
from acf.service.lease_keeper import LeaseSettings
from acf.service.runtime_parts import RuntimeParts
from acf.service.tasks import TaskSet
from acf.testing import VirtualClock
from tests.contract.helpers import append, key
from tests.contract.test_config_versions import pushed, run

DAY_MS = 86_400_000


def closer(
    store: Any, clock: VirtualClock, woken: list[str], agents: Agents | None = None
) -> IdleCloser:
    parts = RuntimeParts(
        store=store,
        clock=clock,
        agents=agents or Agents({}),  # no agent served: acf's default policies (24 h)
        tasks=TaskSet(),
        checkpoints=NoCheckpoints(),
        lease=LeaseSettings(),
        holder="sweeper",
        poke_relay=lambda tenant, session_id: None,
    )

    async def wake(tenant: TenantId, session_id: SessionId) -> None:
        woken.append(session_id)

    return IdleCloser(parts, IdleCloseSettings(), wake, lambda tenant, session_id: False)


async def idle_session(store: Store, tenant: str, customer: str, at_ms: int) -> str:
    """A session whose one message was answered (consumed) at ``at_ms``."""
    appended = await append(store, key(tenant, customer), at_ms=at_ms - 10)
    await store.uow.commit(tenant, [ConsumeRange(appended.session_id, 0, 1, True, at_ms)])
    return appended.session_id


async def status(store: Store, tenant: str, session_id: str) -> SessionStatus:
    record = await store.sessions.get(tenant, session_id)
    assert record is not None
    return record.status


async def test_closes_what_is_due_and_the_key_opens_anew(store: Store, clock: VirtualClock) -> None:
    t0 = clock.now_ms()
    a = await idle_session(store, "t1", "a", t0)
    b = await idle_session(store, "t2", "b", t0 + 1_000)
    sweeper = closer(store, clock, [])

    clock.advance_to(t0 + DAY_MS - 1)
    assert await sweeper.sweep() == 0
    clock.advance_to(t0 + DAY_MS)
    assert await sweeper.sweep() == 1
    closed = await store.sessions.get("t1", a)
    assert closed is not None and closed.status is SessionStatus.CLOSED
    assert closed.closed_at_ms == t0 + DAY_MS
    # not in commit order: that waits for the oldest transaction of the whole cluster (the
    # other test workers' databases too), which this read does not need
    events = await store.events.query("t1", EventQuery(session_id=a, in_commit_order=False))
    assert [(e.kind, dict(e.data)) for e in events if e.kind is EventKind.SESSION_CLOSED] == [
        (EventKind.SESSION_CLOSED, {"reason": "idle", "idle_since_ms": t0})
    ]
    assert await store.lease.current("t1", a) is None
    assert await status(store, "t2", b) is SessionStatus.OPEN
    clock.advance_to(t0 + DAY_MS + 1_000)
    assert await sweeper.sweep() == 1
    assert await status(store, "t2", b) is SessionStatus.CLOSED
    assert await sweeper.sweep() == 0  # nothing left

    again = await append(store, key("t1", "a"), at_ms=clock.now_ms())
    assert again.session_id != a and again.seq == 1
    assert await status(store, "t1", a) is SessionStatus.CLOSED
    assert [m.text for m in await store.messages.read_range("t1", a, 0, 1)] == ["hello"]


async def test_a_held_lease_holds_the_close(store: Store, clock: VirtualClock) -> None:
    t0 = clock.now_ms()
    a = await idle_session(store, "t1", "a", t0)
    sweeper = closer(store, clock, [])
    clock.advance_to(t0 + DAY_MS)
    lease = await store.lease.acquire("t1", a, "driver", 15_000)
    assert lease is not None
    assert await sweeper.sweep() == 0
    assert await status(store, "t1", a) is SessionStatus.OPEN
    await store.lease.release(lease)
    assert await sweeper.sweep() == 1
    assert await status(store, "t1", a) is SessionStatus.CLOSED


class _Racing:
    """The real store, with a message appended right after the sweep took the lease (the
    first read it makes under it): a customer writing as the session closes."""

    def __init__(self, store: Store, customer: str) -> None:
        self._store = store
        self._customer = customer
        self.outbox = self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def undelivered(self, tenant: str, session_id: str) -> Any:
        await append(self._store, key(tenant, self._customer), at_ms=1)
        return await self._store.outbox.undelivered(tenant, session_id)


async def test_a_message_landing_under_the_close_wins(store: Store, clock: VirtualClock) -> None:
    t0 = clock.now_ms()
    a = await idle_session(store, "t1", "a", t0)
    woken: list[str] = []
    sweeper = closer(_Racing(store, "a"), clock, woken)
    clock.advance_to(t0 + DAY_MS)
    assert await sweeper.close_if_idle("t1", a) is None
    record = await store.sessions.get("t1", a)
    assert record is not None
    assert record.status is SessionStatus.OPEN and record.has_unconsumed
    assert woken == [a]  # its driver is told (it may have found the lease held)
    assert await store.lease.current("t1", a) is None
    # not in commit order: that waits for the oldest transaction of the whole cluster (the
    # other test workers' databases too), which this read does not need
    events = await store.events.query("t1", EventQuery(session_id=a, in_commit_order=False))
    assert EventKind.SESSION_CLOSED not in {e.kind for e in events}


async def _unbuildable(version: ConfigVersion) -> BuiltVersion:
    raise RuntimeError("this worker cannot build it")


async def test_a_session_whose_version_cannot_be_built_here_is_held(
    store: Store, clock: VirtualClock
) -> None:
    t0 = clock.now_ms()
    unpinned = await idle_session(store, "t1", "before", t0)  # opened before any version
    await pushed(store, 1)
    await run(store, PromoteVersion("t1", 1, t0, "ann"))
    pinned = await idle_session(store, "t1", "after", t0)
    record = await store.sessions.get("t1", pinned)
    assert record is not None and record.config_version == 1
    agents = Agents({})
    agents.use_versions(store.config_versions, _unbuildable)  # e.g. idle_timeout_s: 604800
    sweeper = closer(store, clock, [], agents)

    clock.advance_to(t0 + DAY_MS + 1_000)  # past acf's default: not a reason to close
    assert await sweeper.sweep() == 0
    assert await sweeper.close_if_idle("t1", pinned) is None
    assert await status(store, "t1", pinned) is SessionStatus.OPEN
    assert await status(store, "t1", unpinned) is SessionStatus.OPEN  # the live one decides
    assert await store.lease.current("t1", pinned) is None
