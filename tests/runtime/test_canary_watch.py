"""The canary watch on the virtual clock, over the real store (an SQLite file, and the
machine's PostgreSQL): a canary with an injected failure rate is rolled back on its own
within two minutes of the breach becoming measurable, with its event and metric; one
without a breach goes 10 → 25 → 50 → 100 % and is promoted; one with too few turns holds;
two watches acting at once commit one decision.

Traffic is honest where it matters to the canary: every tick new customers write (the
store opens each one's session and pins it to the live or the canary version from the
tenant's pointer, in that transaction, by the session id's hash), and each session's turn
is then recorded as the runner records one (``SaveTurnRecord``, labelled with the
session's pinned version); only the turn's outcome is scripted — a share of the canary's
turns fail (the runner's FAILED record: the fallback went out).
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from itertools import pairwise
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from acf.adapters.postgres import open_pg_store
from acf.adapters.postgres.store import libpq_url
from acf.adapters.sql import migrate, schema
from acf.adapters.sqlite import open_sqlite_store
from acf.domain.canary import Hold, Rollback, breach
from acf.domain.channels import Channel
from acf.domain.config_versions import ApplyMode, ConfigPointer, version_label
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import TenantId, new_id, new_trace_id
from acf.domain.messages import NewMessage
from acf.domain.records import TurnRecord
from acf.domain.session_key import SessionKey
from acf.domain.turns import TurnPhase
from acf.observability.config_metrics import ConfigMetrics
from acf.ports.config_versions import PromoteVersion, PushVersion, RecordGate, StartCanary
from acf.ports.event_store import EventQuery
from acf.ports.message_log import AppendMessage
from acf.ports.store import Store
from acf.ports.turn_store import SaveTurnRecord
from acf.service.canary import CanaryWatch, policy_from_resolved
from acf.testing import VirtualClock
from tests.integration.services import require_postgres, temporary_database

TENANT: TenantId = "shop"
CANARY_BLOCK = {
    "failure_margin": 0.02,
    "fallback_margin": 0.05,
    "handoff_margin": 0.05,
    "latency_ratio": 1.5,
    "min_turns": 20,
    "bake_s": 150,
    "steps": [10, 25, 50, 100],
    "check_every_s": 30,
}
POLICY = policy_from_resolved({"canary": CANARY_BLOCK})
TICK_MS = 5_000
TWO_MINUTES_MS = 120_000


# ---------- the store, on both backends ----------


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    require_postgres()
    with temporary_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: VirtualClock
) -> AsyncIterator[Store]:
    opened: Store
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(t.name for t in schema.metadata.sorted_tables)}")
        opened = await open_pg_store(url, clock, pool_size=4, caller_clock=True)
    else:
        opened = await open_sqlite_store(tmp_path / "acf.db", clock)
    try:
        yield opened
    finally:
        await opened.close()


class Announced:
    """A ``ConfigChanges`` that remembers what was announced."""

    def __init__(self) -> None:
        self.tenants: list[TenantId] = []

    async def announce(self, tenant: TenantId) -> None:
        self.tenants.append(tenant)

    def subscribe(self, callback: object) -> None:
        pass


async def live_v1_canary_v2(store: Store, clock: VirtualClock, share: int = 10) -> None:
    """v1 live (its canary block judges), v2 on canary at ``share`` percent."""
    for n in (1, 2):
        push = PushVersion(
            tenant=TENANT,
            content_hash=f"sha256:{n:016x}",
            source={"format": 1, "tenant": TENANT, "body": {"n": n}},
            resolved={"canary": CANARY_BLOCK, "n": n},
            provenance={},
            author="test",
            message=f"v{n}",
            git_commit=None,
            apply=ApplyMode.SESSION_CLOSE,
            at_ms=clock.now_ms(),
        )
        await store.uow.commit(TENANT, [push])
    await store.uow.commit(TENANT, [PromoteVersion(TENANT, 1, clock.now_ms(), "test")])
    await store.uow.commit(TENANT, [StartCanary(TENANT, 2, share, clock.now_ms(), "test")])


# ---------- traffic ----------


class Traffic:
    """New sessions through the store, one turn each; the canary's ``fail_every``-th turn
    fails (live's ``live_fail_every``-th)."""

    def __init__(
        self, store: Store, clock: VirtualClock, fail_every: int, live_fail_every: int = 100
    ) -> None:
        self.store = store
        self.clock = clock
        self.fail_every = {True: fail_every, False: live_fail_every}
        self.turns = {True: 0, False: 0}
        self.customers = 0

    async def sessions(self, count: int) -> None:
        now = self.clock.now_ms()
        ops = []
        for _ in range(count):
            self.customers += 1
            key = SessionKey(TENANT, "support", f"c{self.customers}", Channel.WEB)
            message = NewMessage(key, provider_message_id=new_id(), text="hello")
            ops.append(AppendMessage(message, now, new_trace_id()))
        results = await self.store.uow.commit(TENANT, ops)
        records = []
        for op in ops:
            session_id = results.get(op).session_id
            session = await self.store.sessions.get(TENANT, session_id)
            assert session is not None and session.config_version is not None
            self.turns[session.canary] += 1
            failed = self.turns[session.canary] % self.fail_every[session.canary] == 0
            correlation = Correlation(
                TENANT,
                new_trace_id(),
                session_id,
                turn_id=new_id(),
                group_id=new_id(),
                config_version=version_label(session.config_version),
            )
            record = TurnRecord(
                correlation,
                TurnPhase.FAILED if failed else TurnPhase.COMMITTED,
                from_seq=1,
                to_seq=1,
                attempt=3 if failed else 1,
                started_at_ms=now,
                ended_at_ms=now + 800,
                replies=() if failed else ("Hello! How can I help?",),
                error="RuntimeError: model provider down" if failed else None,
            )
            records.append(SaveTurnRecord(record))
        await self.store.uow.commit(TENANT, records)


async def pointer(store: Store) -> ConfigPointer:
    found = await store.config_versions.pointer(TENANT)
    assert found is not None
    return found


async def tick(clock: VirtualClock, watch: CanaryWatch, ms: int = TICK_MS) -> None:
    """Move the clock one tick; when the watch's check fell due, wait for its round."""
    before = watch.rounds
    due = clock.next_due_ms()
    clock.advance(ms)
    if due is not None and due <= clock.now_ms():
        async with asyncio.timeout(10):
            while True:
                if watch.rounds > before:
                    return
                await asyncio.sleep(0.005)


async def events(store: Store, kind: EventKind) -> list[FabricEvent]:
    # A lookup, not a cursor: what is committed by now (another client's open transaction
    # on the shared PostgreSQL server would hide it from a commit-ordered read).
    return await store.events.query(TENANT, EventQuery(kinds=(kind,), in_commit_order=False))


def watch_of(store: Store, clock: VirtualClock) -> tuple[CanaryWatch, CollectorRegistry, Announced]:
    registry = CollectorRegistry()
    changes = Announced()
    watch = CanaryWatch(
        store,
        clock,
        changes,
        lambda: [TENANT],
        metrics=ConfigMetrics(registry),
        check_every_s=30,
    )
    return watch, registry, changes


def rollbacks(metrics: CollectorRegistry, reason: str) -> float:
    labels = {"tenant": TENANT, "reason": reason}
    return metrics.get_sample_value("acf_config_canary_rollbacks_total", labels) or 0.0


def share_gauge(metrics: CollectorRegistry) -> float | None:
    return metrics.get_sample_value("acf_config_canary_share", {"tenant": TENANT})


# ---------- the tests ----------


async def test_a_failing_canary_is_rolled_back_within_two_minutes(
    store: Store, clock: VirtualClock
) -> None:
    await live_v1_canary_v2(store, clock)
    traffic = Traffic(store, clock, fail_every=5)  # 20 % of the canary's turns fail
    watch, metrics, changes = watch_of(store, clock)
    await watch.start()
    measurable_at: int | None = None
    try:
        for _ in range(200):
            await traffic.sessions(10)
            if measurable_at is None:
                p = await pointer(store)
                assert p.canary == 2 and p.canary_started_at_ms is not None
                since = p.canary_started_at_ms
                live = await store.config_versions.arm_stats(TENANT, 1, since)
                canary = await store.config_versions.arm_stats(TENANT, 2, since)
                measurable = min(live.turns, canary.turns) >= POLICY.min_turns
                if measurable and breach(live, canary, POLICY) is not None:
                    measurable_at = clock.now_ms()
            await tick(clock, watch)
            if (await pointer(store)).canary is None:
                break
    finally:
        await watch.stop()

    assert measurable_at is not None, "the breach never became measurable"
    (event,) = await events(store, EventKind.CONFIG_CANARY_ROLLED_BACK)
    assert event.at_ms - measurable_at <= TWO_MINUTES_MS
    assert event.at_ms - measurable_at <= 30_000 + TICK_MS  # the next check acts on it
    assert "failure rate" in event.data["reason"] and "+2.0 points" in event.data["reason"]
    assert "canary v2 against live v1" in event.data["reason"]
    assert event.data["stats"]["measure"] == "failure"
    assert event.data["stats"]["canary"]["turns"] >= POLICY.min_turns
    assert event.data["actor"] == "canary watch"
    assert event.correlation.config_version == "v2"
    p = await pointer(store)
    assert (p.live, p.canary, p.canary_share) == (1, None, 0)
    v2 = await store.config_versions.get(TENANT, 2)
    assert v2 is not None and v2.rolled_back and v2.status.value == "retired"
    assert rollbacks(metrics, "failure") == 1
    assert share_gauge(metrics) == 0
    assert changes.tenants == [TENANT]
    # New sessions now all get the live version; the canary's open sessions are still
    # pinned to v2 here (the runtime re-pins each at its next turn).
    await traffic.sessions(20)
    assert await store.config_versions.open_sessions_on(TENANT, 2)
    assert not (await store.config_versions.arm_stats(TENANT, 2, clock.now_ms())).turns


@pytest.mark.parametrize("gated", [True, False], ids=["gate_passed", "started_forced"])
async def test_a_sound_canary_advances_step_by_step_and_is_promoted(
    store: Store, clock: VirtualClock, gated: bool
) -> None:
    await live_v1_canary_v2(store, clock)
    if gated:
        gate = RecordGate(TENANT, 2, "scenarios", True, {"scenarios": 3}, clock.now_ms())
        await store.uow.commit(TENANT, [gate])
    # Never failing: with min_turns 20 a single failed turn is 5 % of a step's window,
    # a breach of the 2-point margin (the default min_turns 50 makes one failure 2 %).
    traffic = Traffic(store, clock, fail_every=10**9)
    watch, metrics, changes = watch_of(store, clock)
    shares_seen: list[float] = []
    await watch.start()
    try:
        for _ in range(200):
            await traffic.sessions(12)
            await tick(clock, watch, 2 * TICK_MS)
            gauge = share_gauge(metrics)
            if gauge is not None and (not shares_seen or shares_seen[-1] != gauge):
                shares_seen.append(gauge)
            if (await pointer(store)).canary is None:
                break
    finally:
        await watch.stop()

    advanced = await events(store, EventKind.CONFIG_CANARY_ADVANCED)
    assert [e.data["share"] for e in advanced] == [25, 50, 100]
    assert all("baked without a breach" in e.data["reason"] for e in advanced)
    steps_at = [e.at_ms for e in advanced]
    for a, b in pairwise(steps_at):
        assert b - a >= POLICY.bake_s * 1000  # each share baked in full
    promotes = await events(store, EventKind.CONFIG_PROMOTED)
    (promoted,) = [e for e in promotes if e.data["version"] == "v2"]
    assert promoted.data["from_canary"] is True and promoted.data["actor"] == "canary watch"
    # a canary started without a passed gate is promoted as forced: the audit says so
    assert promoted.data["forced"] is (not gated)
    assert promoted.at_ms - steps_at[-1] >= POLICY.bake_s * 1000
    assert not await events(store, EventKind.CONFIG_CANARY_ROLLED_BACK)
    p = await pointer(store)
    assert (p.live, p.previous_live, p.canary) == (2, 1, None)
    assert shares_seen == [10, 25, 50, 100, 0]
    assert rollbacks(metrics, "failure") == 0
    assert changes.tenants == [TENANT] * 4


async def test_too_few_turns_hold_however_bad_they_look(store: Store, clock: VirtualClock) -> None:
    await live_v1_canary_v2(store, clock)
    traffic = Traffic(store, clock, fail_every=1)  # every canary turn fails
    watch, metrics, changes = watch_of(store, clock)
    await watch.start()
    try:
        for _ in range(2 * POLICY.bake_s * 1000 // TICK_MS):  # two bakes
            await traffic.sessions(1)
            await tick(clock, watch)
    finally:
        await watch.stop()

    assert traffic.turns[True] < POLICY.min_turns
    p = await pointer(store)
    assert (p.live, p.canary, p.canary_share) == (1, 2, 10)
    checked = await watch.check(TENANT)
    assert checked is not None and not checked.acted
    assert isinstance(checked.decision, Hold)
    assert f"canary has {traffic.turns[True]} of 20 turns" in checked.decision.reason
    assert not await events(store, EventKind.CONFIG_CANARY_ROLLED_BACK)
    assert not await events(store, EventKind.CONFIG_CANARY_ADVANCED)
    assert share_gauge(metrics) == 10
    assert changes.tenants == []


async def test_two_watches_acting_at_once_commit_one_rollback(
    store: Store, clock: VirtualClock
) -> None:
    await live_v1_canary_v2(store, clock, share=50)
    traffic = Traffic(store, clock, fail_every=2)
    for _ in range(12):
        await traffic.sessions(10)
    first, first_metrics, first_changes = watch_of(store, clock)
    second, second_metrics, second_changes = watch_of(store, clock)
    one, other = await asyncio.gather(first.check(TENANT), second.check(TENANT))
    assert one is not None and other is not None
    assert isinstance(one.decision, Rollback) and isinstance(other.decision, Rollback)
    assert sorted([one.acted, other.acted]) == [False, True]
    assert len(await events(store, EventKind.CONFIG_CANARY_ROLLED_BACK)) == 1
    assert rollbacks(first_metrics, "failure") + rollbacks(second_metrics, "failure") == 1
    assert len(first_changes.tenants) + len(second_changes.tenants) == 1
    assert await first.check(TENANT) is None  # nothing left to judge
