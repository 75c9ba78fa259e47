"""The configuration version store (``acf.ports.config_versions``) on every backend: push
(numbering, dedup by content hash), the pointer's state machine (promote, canary, share,
canary rollback, live rollback) with every refusal, gates, each op's audit event, and the
canary's per-version turn statistics."""

from dataclasses import replace
from typing import Any

import pytest

from acf.domain.config_versions import ApplyMode, ConfigPointer, VersionStatus
from acf.domain.errors import Conflict, InvalidValue
from acf.domain.events import Correlation, EventKind
from acf.domain.records import TurnRecord
from acf.domain.turns import TurnPhase
from acf.ports.config_versions import (
    PromoteVersion,
    PushResult,
    PushVersion,
    RecordGate,
    RollbackCanary,
    RollbackLive,
    SetCanaryShare,
    StartCanary,
)
from acf.ports.event_store import EventQuery
from acf.ports.store import Store
from acf.ports.turn_store import SaveTurnRecord
from acf.ports.unit_of_work import WriteOp
from tests.contract.event_horizon import readable

T = "t1"


def push_op(content_hash: str, at_ms: int = 1_000, **fields: Any) -> PushVersion:
    values: dict[str, Any] = {
        "tenant": T,
        "content_hash": content_hash,
        "source": {"format": 1, "tenant": T, "body": {"hash": content_hash}},
        "resolved": {"agents": {"support": {"settings": {"deadline_ms": 30000}}}},
        "provenance": {"agents.support.settings.deadline_ms": {"layer": "default"}},
        "author": "ann",
        "message": f"push {content_hash}",
        "git_commit": None,
        "apply": ApplyMode.SESSION_CLOSE,
        "at_ms": at_ms,
    }
    values.update(fields)
    return PushVersion(**values)


async def run(store: Store, op: WriteOp[Any]) -> Any:
    return (await store.uow.commit(T, [op])).get(op)


async def push(store: Store, content_hash: str, **fields: Any) -> PushResult:
    result: PushResult = await run(store, push_op(content_hash, **fields))
    return result


async def pushed(store: Store, count: int) -> None:
    for n in range(1, count + 1):
        await push(store, f"sha256:{n:016x}")


async def status(store: Store, number: int) -> tuple[VersionStatus, bool]:
    version = await store.config_versions.get(T, number)
    assert version is not None
    return version.status, version.rolled_back


async def kinds(store: Store) -> list[str]:
    await readable(store)
    return [e.kind.value for e in await store.events.query(T, EventQuery())]


async def test_push_numbers_per_tenant_and_dedups_by_hash(store: Store) -> None:
    first = await push(store, "sha256:aaaa", git_commit="abc123", apply=ApplyMode.NEXT_TURN)
    assert first.created and first.version.number == 1 and first.version.label == "v1"
    v1 = first.version
    assert v1.status is VersionStatus.DRAFT and not v1.rolled_back and v1.gates == {}
    assert (v1.git_commit, v1.apply, v1.author) == ("abc123", ApplyMode.NEXT_TURN, "ann")
    assert v1.source == {"format": 1, "tenant": T, "body": {"hash": "sha256:aaaa"}}
    assert v1.provenance == {"agents.support.settings.deadline_ms": {"layer": "default"}}
    second = await push(store, "sha256:bbbb", at_ms=2_000)
    assert second.created and second.version.number == 2
    again = await push(store, "sha256:aaaa", message="same content again", at_ms=3_000)
    assert not again.created and again.version == v1
    # Another tenant numbers its own versions from 1, the same content included.
    other = replace(push_op("sha256:aaaa"), tenant="t2")
    theirs = (await store.uow.commit("t2", [other])).get(other)
    assert theirs.created and theirs.version.number == 1 and theirs.version.tenant == "t2"

    assert await store.config_versions.get(T, 1) == v1
    assert await store.config_versions.get(T, 3) is None
    assert await store.config_versions.by_hash(T, "sha256:bbbb") == second.version
    assert await store.config_versions.by_hash(T, "sha256:cccc") is None
    assert [v.number for v in await store.config_versions.history(T)] == [2, 1]
    assert [v.number for v in await store.config_versions.history(T, limit=1)] == [2]
    assert await store.config_versions.pointer(T) is None
    # One event per version created; none for the dedup.
    await readable(store)
    events = await store.events.query(T, EventQuery(kinds=[EventKind.CONFIG_PUSHED]))
    assert [(e.data["version"], e.correlation.config_version) for e in events] == [
        ("v1", "v1"),
        ("v2", "v2"),
    ]
    assert events[0].data["author"] == "ann" and events[0].data["git_commit"] == "abc123"


async def test_push_of_an_unknown_apply_mode_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="sometimes"):
        await push(store, "sha256:aaaa", apply="sometimes")
    assert await store.config_versions.history(T) == []


async def test_promote_and_rollback_live(store: Store) -> None:
    await pushed(store, 3)
    with pytest.raises(Conflict, match="no configuration version v9"):
        await run(store, PromoteVersion(T, 9, 1_500, "ann"))
    with pytest.raises(Conflict, match="no previous live version"):
        await run(store, RollbackLive(T, 1_500, "ann", "bad"))
    assert await store.config_versions.pointer(T) is None  # refusals left no row behind

    p1 = await run(store, PromoteVersion(T, 1, 2_000, "ann"))
    assert p1 == ConfigPointer(T, 1, None, None, 0, None, None, 2_000)
    assert await store.config_versions.pointer(T) == p1
    assert await status(store, 1) == (VersionStatus.LIVE, False)
    with pytest.raises(Conflict, match="v1 is already live"):
        await run(store, PromoteVersion(T, 1, 2_100, "ann"))
    with pytest.raises(Conflict, match="no previous live version"):
        await run(store, RollbackLive(T, 2_100, "ann", "bad"))

    p2 = await run(store, PromoteVersion(T, 2, 3_000, "bob"))
    assert (p2.live, p2.previous_live) == (2, 1)
    assert await status(store, 1) == (VersionStatus.RETIRED, False)
    assert await status(store, 2) == (VersionStatus.LIVE, False)

    back = await run(store, RollbackLive(T, 4_000, "bob", "error rate"))
    assert (back.live, back.previous_live, back.canary) == (1, None, None)
    assert await status(store, 1) == (VersionStatus.LIVE, False)
    assert await status(store, 2) == (VersionStatus.RETIRED, True)
    with pytest.raises(Conflict, match="no previous live version"):
        await run(store, RollbackLive(T, 4_100, "bob", "again"))
    with pytest.raises(Conflict, match="v2 was rolled back"):
        await run(store, PromoteVersion(T, 2, 4_200, "bob"))
    # A retired version that was not rolled back may be promoted again.
    await run(store, PromoteVersion(T, 3, 5_000, "bob"))
    again = await run(store, PromoteVersion(T, 1, 6_000, "bob", forced=True))
    assert (again.live, again.previous_live) == (1, 3)

    await readable(store)
    events = await store.events.query(
        T, EventQuery(kinds=[EventKind.CONFIG_PROMOTED, EventKind.CONFIG_ROLLED_BACK])
    )
    assert [(e.kind.value, e.correlation.config_version) for e in events] == [
        ("config.promoted", "v1"),
        ("config.promoted", "v2"),
        ("config.rolled_back", "v1"),
        ("config.promoted", "v3"),
        ("config.promoted", "v1"),
    ]
    assert events[1].data == {
        "version": "v2",
        "previous": "v1",
        "from_canary": False,
        "cancelled_canary": None,
        "actor": "bob",
        "forced": False,
    }
    assert events[2].data["rolled_back"] == "v2" and events[2].data["reason"] == "error rate"
    assert events[4].data["forced"] is True


async def test_canary_state_machine(store: Store) -> None:
    await pushed(store, 5)
    with pytest.raises(Conflict, match="no live version"):
        await run(store, StartCanary(T, 2, 10, 1_500, "ann"))
    await run(store, PromoteVersion(T, 1, 2_000, "ann"))
    with pytest.raises(Conflict, match="v1 is live"):
        await run(store, StartCanary(T, 1, 10, 2_100, "ann"))
    for share in (-1, 101):
        with pytest.raises(InvalidValue, match="share"):
            await run(store, StartCanary(T, 2, share, 2_100, "ann"))

    started = await run(store, StartCanary(T, 2, 10, 3_000, "ann"))
    assert started == ConfigPointer(T, 1, None, 2, 10, 3_000, 3_000, 3_000)
    assert await status(store, 2) == (VersionStatus.CANARY, False)
    with pytest.raises(Conflict, match="v2 is already on canary"):
        await run(store, StartCanary(T, 3, 10, 3_100, "ann"))
    with pytest.raises(Conflict, match=r"v3 is not on canary \(the canary is v2\)"):
        await run(store, SetCanaryShare(T, 3, 25, 3_100, "step"))
    with pytest.raises(Conflict, match="v3 is not on canary"):
        await run(store, RollbackCanary(T, 3, "bad", 3_100, "ann"))
    with pytest.raises(InvalidValue, match="share"):
        await run(store, SetCanaryShare(T, 2, 101, 3_100, "step"))

    stepped = await run(store, SetCanaryShare(T, 2, 25, 4_000, "baked"))
    assert (stepped.canary_share, stepped.canary_started_at_ms, stepped.canary_step_at_ms) == (
        25,
        3_000,
        4_000,
    )
    rolled = await run(
        store, RollbackCanary(T, 2, "failure rate +5%", 5_000, "canary", {"turns": 60})
    )
    assert rolled == ConfigPointer(T, 1, None, None, 0, None, None, 5_000)
    assert await status(store, 2) == (VersionStatus.RETIRED, True)
    with pytest.raises(Conflict, match=r"v2 is not on canary \(no canary is running\)"):
        await run(store, SetCanaryShare(T, 2, 50, 5_100, "step"))
    with pytest.raises(Conflict, match="v2 is rolled back"):
        await run(store, StartCanary(T, 2, 10, 5_100, "ann"))

    # Promoting another version cancels a running canary (retired, not rolled back) ...
    await run(store, StartCanary(T, 3, 10, 6_000, "ann"))
    promoted = await run(store, PromoteVersion(T, 4, 7_000, "ann"))
    assert (promoted.live, promoted.previous_live, promoted.canary) == (4, 1, None)
    assert await status(store, 3) == (VersionStatus.RETIRED, False)
    # ... which may go on canary again, and promoting the canary itself ends it.
    await run(store, StartCanary(T, 3, 50, 8_000, "ann"))
    final = await run(store, PromoteVersion(T, 3, 9_000, "canary"))
    assert final == ConfigPointer(T, 3, 4, None, 0, None, None, 9_000)
    # A live rollback cancels a running canary.
    await run(store, StartCanary(T, 5, 10, 10_000, "ann"))
    back = await run(store, RollbackLive(T, 11_000, "ann", "bad"))
    assert (back.live, back.previous_live, back.canary, back.canary_share) == (4, None, None, 0)
    assert await status(store, 5) == (VersionStatus.RETIRED, True)  # its sessions re-pin
    assert await status(store, 3) == (VersionStatus.RETIRED, True)

    await readable(store)
    events = await store.events.query(
        T,
        EventQuery(
            kinds=[
                EventKind.CONFIG_CANARY_STARTED,
                EventKind.CONFIG_CANARY_ADVANCED,
                EventKind.CONFIG_CANARY_ROLLED_BACK,
            ]
        ),
    )
    assert [(e.kind.value, e.data["version"]) for e in events] == [
        ("config.canary_started", "v2"),
        ("config.canary_advanced", "v2"),
        ("config.canary_rolled_back", "v2"),
        ("config.canary_started", "v3"),
        ("config.canary_started", "v3"),
        ("config.canary_started", "v5"),
    ]
    assert events[1].data == {"version": "v2", "from_share": 10, "share": 25, "reason": "baked"}
    assert events[2].data["stats"] == {"turns": 60} and events[2].data["live"] == "v1"
    assert events[2].data["reason"] == "failure rate +5%"


async def test_a_refused_op_writes_nothing_of_its_unit(store: Store) -> None:
    await pushed(store, 2)
    before = await kinds(store)
    with pytest.raises(Conflict):
        await store.uow.commit(
            T, [PromoteVersion(T, 1, 2_000, "ann"), StartCanary(T, 1, 10, 2_000, "ann")]
        )
    assert await store.config_versions.pointer(T) is None
    assert await status(store, 1) == (VersionStatus.DRAFT, False)
    assert await kinds(store) == before


async def test_gates_merge_by_name(store: Store) -> None:
    await pushed(store, 1)
    with pytest.raises(Conflict, match="no configuration version v2"):
        await run(store, RecordGate(T, 2, "scenarios", True, {}, 2_000))
    first = await run(store, RecordGate(T, 1, "scenarios", False, {"failed": 2}, 2_000))
    assert first.gates == {"scenarios": {"passed": False, "at_ms": 2_000, "summary": {"failed": 2}}}
    await run(store, RecordGate(T, 1, "preview", True, {"changed": 0}, 3_000))
    last = await run(store, RecordGate(T, 1, "scenarios", True, {"failed": 0}, 4_000))
    assert last.gates == {
        "scenarios": {"passed": True, "at_ms": 4_000, "summary": {"failed": 0}},
        "preview": {"passed": True, "at_ms": 3_000, "summary": {"changed": 0}},
    }
    assert last.updated_at_ms == 4_000
    assert await store.config_versions.get(T, 1) == last
    await readable(store)
    events = await store.events.query(T, EventQuery(kinds=[EventKind.CONFIG_GATE_RECORDED]))
    assert [(e.data["gate"], e.data["passed"]) for e in events] == [
        ("scenarios", False),
        ("preview", True),
        ("scenarios", True),
    ]


def record(
    n: int,
    outcome: TurnPhase = TurnPhase.COMMITTED,
    version: str | None = "v1",
    duration: int = 100,
    ended: int = 10_000,
    **details: Any,
) -> SaveTurnRecord:
    return SaveTurnRecord(
        TurnRecord(
            Correlation(T, "tr", "s1", f"turn-{n}", config_version=version),
            outcome,
            0,
            1,
            1,
            ended - duration,
            ended,
            details=details,
        )
    )


async def test_arm_stats_count_the_versions_turns(store: Store) -> None:
    empty = await store.config_versions.arm_stats(T, 1, 0)
    assert (empty.turns, empty.failed, empty.latency_p95_ms) == (0, 0, None)
    ops: list[WriteOp[Any]] = [
        *(record(n, duration=(n + 1) * 10) for n in range(20)),  # 10..200 ms
        record(20, TurnPhase.FAILED, duration=5_000),
        record(21, routing_reason="fallback"),
        record(22, outcomes=["fallback"]),
        record(23, llm={"outcome": "FAILED"}),
        record(24, llm={"outcome": "HANDOFF"}),
        record(25, category="refund", handoff="asked for a person"),
        record(26, TurnPhase.SUPERSEDED),  # not a turn that answered
        record(27, version="v2"),
        record(28, version=None),
        record(29, ended=1_000),  # before the window
    ]
    await store.uow.commit(T, ops)
    stats = await store.config_versions.arm_stats(T, 1, 5_000)
    assert (stats.turns, stats.failed, stats.fallback, stats.handoff) == (26, 1, 4, 2)
    # Nearest rank: the 25th of 26 durations (20 of 10..200 ms, five of 100 ms, 5,000 ms).
    assert stats.latency_p95_ms == 200
    assert stats.failure_rate == pytest.approx(1 / 26)
    assert (await store.config_versions.arm_stats(T, 2, 0)).turns == 1
    assert (await store.config_versions.arm_stats(T, 1, 0)).turns == 27
    # The record itself reads back unchanged.
    saved = await store.turns.get_record(T, "turn-25")
    assert saved is not None and saved.details == {
        "category": "refund",
        "handoff": "asked for a person",
    }


async def test_the_watchs_guards_refuse_a_stale_decision(store: Store) -> None:
    """The canary watch's ops carry what it read: a share another watch already moved, or a
    canary an operator replaced meanwhile, refuse instead of acting twice or overriding."""
    await pushed(store, 3)
    await run(store, PromoteVersion(T, 1, 1_000, "ann"))
    await run(store, StartCanary(T, 2, 10, 2_000, "ann"))
    await run(store, SetCanaryShare(T, 2, 25, 3_000, "baked", from_share=10))
    with pytest.raises(Conflict, match="v2 runs at 25 %, not 10 %"):
        await run(store, SetCanaryShare(T, 2, 25, 3_001, "baked", from_share=10))
    # an operator promotes v3 meanwhile; the watch's promote of v2 (read before) refuses
    await run(store, PromoteVersion(T, 3, 4_000, "ann"))
    with pytest.raises(Conflict, match="v2 is no longer the canary"):
        await run(store, PromoteVersion(T, 2, 4_001, "canary watch", canary_only=True))
    pointer = await store.config_versions.pointer(T)
    assert pointer is not None and (pointer.live, pointer.canary) == (3, None)


async def test_a_live_rollback_rolls_back_the_canary_it_cancels(store: Store) -> None:
    """Nobody judges a canary once the live version it was compared with is rolled back:
    it is retired as rolled back too, so its sessions move to the restored version."""
    await pushed(store, 3)
    await run(store, PromoteVersion(T, 1, 1_000, "ann"))
    await run(store, PromoteVersion(T, 2, 2_000, "ann"))
    await run(store, StartCanary(T, 3, 10, 3_000, "ann"))
    back = await run(store, RollbackLive(T, 4_000, "ann", "v2 is broken"))
    assert (back.live, back.canary) == (1, None)
    assert await status(store, 3) == (VersionStatus.RETIRED, True)
    assert await status(store, 2) == (VersionStatus.RETIRED, True)
