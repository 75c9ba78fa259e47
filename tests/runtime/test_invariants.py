"""DESIGN §3 invariants 1, 3, 5, 6 and 9, each by a test that fails when it is broken.

The scenario files check all of them after every run too (``acf.testing.invariants``);
here each one is driven on purpose, and the checkers themselves are shown to catch a
broken store.
"""

from dataclasses import replace
from pathlib import Path

import pytest

from acf.domain.agent_settings import AgentSettings
from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.replies import PipelineResult
from acf.domain.session_key import SessionKey
from acf.domain.supersede import SupersedeDecision
from acf.domain.tools import SideEffectPolicy, ToolSpec
from acf.domain.turns import Turn, TurnPhase
from acf.ports.checkpoints import Phase
from acf.ports.event_store import EventQuery
from acf.ports.session_store import SessionRecord, SessionStatus
from acf.service import turn_ending_units, turn_progress_units
from acf.testing import invariants
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.pipeline import Script
from acf.testing.tools import ToolBackend

SLOW = HarnessOptions(script=Script(steps=({"sleep": 2000},)))
BURST = ["I need to change my booking", "to Friday please."]


async def _burst(h: Harness, customer: str = "alice") -> None:
    await h.send(customer, BURST[0])
    await h.advance(300)
    await h.send(customer, BURST[1])


async def _session(h: Harness, customer: str = "alice") -> SessionRecord:
    session = await h.store.sessions.find_open(TENANT, h.key(customer))
    assert session is not None
    return session


# -- invariant 1: every accepted message ends in exactly one committed range ---------------


# A pipeline that passes through every phase, a tool call included.
EVERY_PHASE = HarnessOptions(
    script=Script(steps=({"sleep": 2000}, {"call": "note", "args": {"n": 1}})),
    tools=(ToolBackend(ToolSpec("note", SideEffectPolicy.IDEMPOTENT)),),
)


@pytest.mark.parametrize("phase", list(Phase))
async def test_inv1_a_crash_at_any_phase_loses_no_message_and_answers_once(
    tmp_path: Path, phase: Phase
) -> None:
    async with Harness(tmp_path, EVERY_PHASE) as h:
        h.crash_at(phase)
        await _burst(h)
        if phase is Phase.TYPING_HOLD:
            # A reply is held only while the customer types as it becomes ready (the web
            # channel holds by default): typing starts during the 2 s pipeline.
            await h.advance(1500)
            await h.typing("alice", True)
        await h.run_until_idle()
        assert h.crashes == 1
        assert h.replies("alice") == [f"echo: {BURST[0]} | {BURST[1]}"]
        repeats = 1 if phase is Phase.SEND_ACCEPTED else 0
        assert await invariants.check_all(h.store, [TENANT], h.channel, h.tally, repeats) == []


async def test_inv1_messages_during_a_crash_restart_are_answered(tmp_path: Path) -> None:
    async with Harness(tmp_path, SLOW) as h:
        await h.send("alice", "first question?")
        await h.advance(1000)  # running
        await h.crash()
        await h.send("alice", "second question?")
        await h.run_until_idle()
        session = await _session(h)
        assert (session.last_seq, session.consumed_seq) == (2, 2)
        assert await invariants.check_all(h.store, [TENANT], h.channel, h.tally) == []


def test_inv1_checker_catches_a_message_in_no_range_or_two() -> None:
    key = SessionKey(TENANT, "a1", "alice", "web")
    session = SessionRecord("s", key, SessionStatus.OPEN, 3, 3, {}, 0, False, None, 0, 0)
    base = Turn(TENANT, "t1", "s", "g", TurnPhase.COMMITTED, 0, 2, 1, 1, False, "x", 0, 0)
    overlapping = replace(base, turn_id="t2", from_seq=1, to_seq=3)
    assert invariants.messages_in_one_committed_range(session, [base]) != []  # 3 unanswered
    assert invariants.messages_in_one_committed_range(session, [base, overlapping]) != []
    ok = replace(overlapping, from_seq=2)
    assert invariants.messages_in_one_committed_range(session, [base, ok]) == []


# -- invariant 3: one running turn per session; a stale holder writes nothing -----------


async def test_inv3_two_runtimes_never_run_one_session_at_once(tmp_path: Path) -> None:
    async with Harness(tmp_path, SLOW) as h:
        await h.add_runtime()
        for i in range(3):
            await h.send("alice", f"question number {i}?")
            await h.send("bob", f"question number {i}?")
            await h.advance(700)
        await h.run_until_idle()
        assert h.tally.most_running == 1
        assert await invariants.check_all(h.store, [TENANT], h.channel, h.tally) == []


async def test_inv3_a_holder_whose_lease_was_taken_writes_nothing(tmp_path: Path) -> None:
    options = HarnessOptions(script=Script(steps=({"sleep": 8000, "attempts": 1},)))
    async with Harness(tmp_path, options) as h:
        await h.send("alice", "cancel my subscription.")
        await h.advance(1000)
        session = await _session(h)
        running = await h.store.turns.live_turn(TENANT, session.session_id)
        assert running is not None and running.phase is TurnPhase.RUNNING
        await h.steal_lease("alice")
        # The old holder's commit, built exactly as the runner builds it, is refused whole.
        group = await h.store.turns.get_group(TENANT, running.group_id)
        assert group is not None
        versions = turn_progress_units.Versions("v", "c")
        ops = turn_ending_units.commit(
            turn=running,
            group=group,
            fence=running.fence,
            result=PipelineResult.reply("stale"),
            state_version=0,
            require_last_seq=True,
            started_at_ms=0,
            at_ms=h.clock.now_ms(),
            versions=versions,
        )
        with pytest.raises(Conflict):
            await h.store.uow.commit(TENANT, ops)
        await h.advance(5000)  # the renewal fails: the old pipeline is cancelled
        events = await h.store.events.query(TENANT, EventQuery(session_id=session.session_id))
        assert EventKind.LEASE_LOST in [e.kind for e in events]
        assert EventKind.TURN_COMMITTED not in [e.kind for e in events]
        assert h.replies("alice") == []
        await h.run_until_idle()  # the other lease expires; the turn is re-run once
        assert h.replies("alice") == ["echo: cancel my subscription."]
        turn = await h.store.turns.get(TENANT, running.turn_id)
        assert turn is not None and turn.attempt == 2 and turn.fence > running.fence


def test_inv3_checker_catches_overlapping_turns() -> None:
    def event(kind: EventKind, turn: str, at: int) -> FabricEvent:
        return FabricEvent(kind, at, Correlation(TENANT, "tr", "s", turn, "g", "v", "c"))

    overlapping = [
        event(EventKind.TURN_STARTED, "t1", 0),
        event(EventKind.TURN_STARTED, "t2", 50),
        event(EventKind.TURN_COMMITTED, "t1", 100),
        event(EventKind.TURN_COMMITTED, "t2", 150),
    ]
    assert invariants.one_running_at_a_time("s", overlapping) != []
    in_turn = [overlapping[0], overlapping[2], overlapping[1], overlapping[3]]
    assert invariants.one_running_at_a_time("s", sorted(in_turn, key=lambda e: e.at_ms)) != []
    serial = [
        event(EventKind.TURN_STARTED, "t1", 0),
        event(EventKind.TURN_COMMITTED, "t1", 100),
        event(EventKind.TURN_STARTED, "t2", 100),
        event(EventKind.TURN_COMMITTED, "t2", 150),
    ]
    assert invariants.one_running_at_a_time("s", serial) == []


# -- invariant 5: a turn's effects commit together or not at all ---------------------------


async def test_inv5_a_refused_commit_leaves_nothing_behind(tmp_path: Path) -> None:
    # QUEUE: the runtime lets the turn run on when the second message lands, so the
    # commit below is the only one racing for it.
    queue = replace(SLOW, settings=AgentSettings(supersede=SupersedeDecision.QUEUE))
    async with Harness(tmp_path, queue) as h:
        await h.send("alice", "what's my balance?")
        await h.advance(1000)
        session = await _session(h)
        running = await h.store.turns.live_turn(TENANT, session.session_id)
        assert running is not None
        group = await h.store.turns.get_group(TENANT, running.group_id)
        assert group is not None
        lease = await h.store.lease.current(TENANT, session.session_id)
        assert lease is not None
        await h.send("alice", "and my last payment?")  # last_seq moves: the commit check fails
        result = PipelineResult.reply("your balance is 3", state_patch={"data": {"x": 1}})
        ops = turn_ending_units.commit(
            turn=running,
            group=group,
            fence=lease.fence,
            result=result,
            state_version=session.state_version,
            require_last_seq=True,
            started_at_ms=0,
            at_ms=h.clock.now_ms(),
            versions=turn_progress_units.Versions("v", "c"),
        )
        with pytest.raises(Conflict):
            await h.store.uow.commit(TENANT, ops)
        after = await _session(h)
        assert after.state_version == session.state_version and after.consumed_seq == 0
        assert await h.store.outbox.for_session(TENANT, session.session_id) == []
        assert await h.store.turns.get_record(TENANT, running.turn_id) is None
        turn = await h.store.turns.get(TENANT, running.turn_id)
        assert turn is not None and turn.phase is TurnPhase.RUNNING


# -- invariant 6: superseded output is never delivered; rows are sent at least once ------


async def test_inv6_a_superseded_reply_is_never_committed_nor_sent(tmp_path: Path) -> None:
    async with Harness(tmp_path, SLOW) as h:
        await h.send("alice", "Book a table in Paris.")
        await h.advance(1000)
        await h.send("alice", "wait, I meant London.")
        await h.run_until_idle()
        assert h.replies("alice") == ["echo: Book a table in Paris. | wait, I meant London."]
        session = await _session(h)
        turns = await h.store.turns.list_turns(TENANT, session.session_id)
        superseded = [t for t in turns if t.phase is TurnPhase.SUPERSEDED]
        assert len(superseded) == 1
        rows = await h.store.outbox.for_session(TENANT, session.session_id)
        assert {r.turn_id for r in rows} == {
            t.turn_id for t in turns if t.phase is TurnPhase.COMMITTED
        }
        assert await invariants.check_all(h.store, [TENANT], h.channel, h.tally) == []


async def test_inv6_rows_go_in_order_and_are_resent_only_after_a_crash(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        h.channel.fail_next(2)  # a provider outage: the first row waits, the order holds
        await h.send("alice", "first question?")
        await h.advance(300)
        await h.send("alice", "second question?")
        h.crash_at(Phase.SEND_ACCEPTED)
        await h.run_until_idle()
        assert h.replies("alice") == ["echo: first question?", "echo: second question?"]
        assert h.channel.repeats() == 1  # the row accepted just before the crash, once
        texts = [s.text for s in h.channel.sends]
        assert texts == sorted(texts, key=lambda t: "second" in t)


# -- invariant 9: every turn leaves a record and correlated events ------------------------


async def test_inv9_every_turn_has_a_record_and_correlated_events(tmp_path: Path) -> None:
    options = HarnessOptions(
        script=Script(steps=({"sleep": 1000}, {"raise": "flaky", "attempts": 1}))
    )
    async with Harness(tmp_path, options) as h:
        await h.send("alice", "hello there, one question.")
        await h.advance(700)
        await h.send("alice", "about my invoice.")
        await h.run_until_idle()
        session = await _session(h)
        turns = await h.store.turns.list_turns(TENANT, session.session_id)
        assert {t.phase for t in turns} == {TurnPhase.SUPERSEDED, TurnPhase.COMMITTED}
        for turn in turns:
            record = await h.store.turns.get_record(TENANT, turn.turn_id)
            assert record is not None and record.outcome is turn.phase
            c = record.correlation
            assert c.agent_version == f"acf/{__import__('acf').__version__} scripted/1"
            assert c.config_version == h.agents.config_version
            assert None not in (c.trace_id, c.session_id, c.turn_id, c.group_id)
        events = await h.store.events.query(TENANT, EventQuery(session_id=session.session_id))
        assert invariants.correlated(events) == []
        assert await invariants.check_all(h.store, [TENANT], h.channel, h.tally) == []


def test_inv9_checker_catches_a_missing_id() -> None:
    partial = FabricEvent(EventKind.TURN_COMMITTED, 0, Correlation(TENANT, "tr", "s", "t"))
    assert invariants.correlated([partial]) != []


def test_inv7_checker_catches_an_irreversible_start_over_an_unseen_message() -> None:
    c = Correlation(TENANT, "tr", "s", "t1", "g", "v", "c")

    def received(seq: int) -> FabricEvent:
        return FabricEvent(EventKind.MESSAGE_RECEIVED, 0, c, {"seq": seq})

    def gate(to_seq: int, forced: str | None = None) -> FabricEvent:
        data = {"to_seq": to_seq, "forced": forced, "off": False}
        return FabricEvent(EventKind.TURN_IRREVERSIBLE_STARTED, 0, c, data)

    assert invariants.no_irreversible_over_unseen("s", [received(1), gate(1)]) == []
    assert invariants.no_irreversible_over_unseen("s", [received(1), received(2), gate(1)])
    forced = [received(1), received(2), gate(1, "pipeline")]
    assert invariants.no_irreversible_over_unseen("s", forced) == []
