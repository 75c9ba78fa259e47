"""The mode guard on the embedded runtime (issue 22): a turn running when its session
leaves agent mode (a handoff, a cool-down, a block) ends without a reply. Told at once
(the mode change wakes the session), the runner stops the pipeline; not told, the commit
is refused for the mode. Either way the turn is SUPERSEDED (reason ``mode``), its group
HANDED_OFF, nothing queued, the messages left for whoever answers now. A turn past the
irreversible gate is never stopped: it commits silently, its effects kept and its reply
withheld (kept in its record)."""

import asyncio
from pathlib import Path

from acf.adapters.sql.database import SqlConnection
from acf.domain.agent_settings import AgentSettings
from acf.domain.events import EventKind
from acf.domain.modes import SessionMode
from acf.domain.replies import PipelineResult
from acf.domain.turns import GroupStatus, Turn, TurnPhase
from acf.ports.event_store import EventQuery
from acf.ports.handoffs import Operator, ResumeAgent
from acf.ports.pipeline import TurnContext
from acf.ports.session_store import SessionRecord
from acf.service.running_turn import ModeChanged
from acf.testing.harness import TENANT, Harness, HarnessOptions


class Waits:
    """Holds the turn until the test lets it go (``go``); optionally passes the
    irreversible gate first (``gate="before"``) or after (``gate="after"``); raises
    instead of answering when ``breaks``."""

    name = "waits"
    version = "1"

    def __init__(self, gate: str | None = None, breaks: bool = False, draft: str = "") -> None:
        self.gate = gate
        self.breaks = breaks
        self.draft = draft
        """Drafted before waiting (when not empty)."""
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.runs = 0
        self.raised: list[BaseException] = []

    async def run(self, ctx: TurnContext) -> PipelineResult:
        self.runs += 1
        try:
            if self.gate == "before":
                await ctx.enter_irreversible()
            if self.draft:
                await ctx.draft(self.draft)
            self.started.set()
            await self.go.wait()
            if self.gate == "after":
                await ctx.enter_irreversible()
        except Exception as exc:
            self.raised.append(exc)
            raise
        if self.breaks:
            raise RuntimeError("the brain is down")
        return PipelineResult.reply("Your refund is on its way.", state_patch={"data": {"r": 1}})


async def started(h: Harness, pipeline: Waits, customer: str = "ana") -> SessionRecord:
    """Send a message and move the clock until its turn's pipeline runs."""
    await h.send(customer, "I want a refund for order 1001.")
    for _ in range(100):
        if pipeline.started.is_set():
            break
        await h.advance(100)
    assert pipeline.started.is_set(), "the pipeline never started"
    session = await h.store.sessions.find_open(TENANT, h.key(customer))
    assert session is not None
    return session


async def hand_off(h: Harness, session_id: str, *, wake: bool) -> None:
    """Another writer moves the session to human mode (as a handoff does); ``wake``: and
    tells its driver, as every mode change does (else only the commit finds out)."""

    def update(conn: SqlConnection) -> None:
        conn.execute(
            "UPDATE sessions SET mode = 'human', mode_reason = 'test' "
            "WHERE tenant = ? AND session_id = ? AND mode = 'agent'",
            (TENANT, session_id),
        )

    await h.store.db.write(TENANT, update)
    if wake:
        await h.runtime.notify(TENANT, session_id)
    await h.settle()


async def only_turn(h: Harness, session_id: str) -> Turn:
    (turn,) = await h.store.turns.list_turns(TENANT, session_id)
    return turn


async def assert_stood_down(h: Harness, session_id: str) -> Turn:
    turn = await only_turn(h, session_id)
    assert turn.phase is TurnPhase.SUPERSEDED
    record = await h.store.turns.get_record(TENANT, turn.turn_id)
    assert record is not None and record.details == {"reason": "mode", "mode": "human"}
    assert record.replies == ()
    group = await h.store.turns.get_group(TENANT, turn.group_id)
    assert group is not None and group.status is GroupStatus.HANDED_OFF
    assert await h.store.outbox.for_session(TENANT, session_id) == []
    assert h.replies() == []
    session = await h.store.sessions.get(TENANT, session_id)
    assert session is not None and session.mode is SessionMode.HUMAN
    assert (session.consumed_seq, session.last_seq) == (0, 1)  # left for the operator
    superseded = EventQuery(session_id=session_id, kinds=(EventKind.TURN_SUPERSEDED,))
    (event,) = await h.store.events.query(TENANT, superseded)
    assert (event.data["reason"], event.data["mode"]) == ("mode", "human")
    return turn


async def test_a_handoff_while_the_pipeline_runs_stops_it_without_a_reply(
    tmp_path: Path,
) -> None:
    pipeline = Waits()
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        session = await started(h, pipeline)
        await hand_off(h, session.session_id, wake=True)
        assert pipeline.runs == 1 and not pipeline.go.is_set()  # stopped, not let finish
        await assert_stood_down(h, session.session_id)
        await h.run_until_idle()
        assert pipeline.runs == 1 and h.replies() == []  # no agent turn in human mode


async def test_a_handoff_the_runner_was_not_told_of_refuses_the_commit(tmp_path: Path) -> None:
    pipeline = Waits()
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        session = await started(h, pipeline)
        await hand_off(h, session.session_id, wake=False)
        pipeline.go.set()  # it finishes: its commit is refused for the mode
        await h.settle()
        await assert_stood_down(h, session.session_id)
        session_now = await h.store.sessions.get(TENANT, session.session_id)
        assert session_now is not None and "r" not in session_now.state["data"]  # no effect


async def test_a_gate_that_comes_after_the_handoff_is_refused(tmp_path: Path) -> None:
    pipeline = Waits(gate="after")
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        session = await started(h, pipeline)
        await hand_off(h, session.session_id, wake=False)
        pipeline.go.set()
        await h.settle()
        (refused,) = pipeline.raised
        assert isinstance(refused, ModeChanged)
        turn = await assert_stood_down(h, session.session_id)
        assert not turn.irreversible_started  # no irreversible action began


async def test_a_failure_after_the_handoff_sends_no_fallback(tmp_path: Path) -> None:
    pipeline = Waits(breaks=True)
    options = HarnessOptions(pipeline=pipeline, settings=AgentSettings(max_attempts=1))
    async with Harness(tmp_path, options) as h:
        session = await started(h, pipeline)
        await hand_off(h, session.session_id, wake=False)
        pipeline.go.set()
        await h.settle()
        await assert_stood_down(h, session.session_id)
        now = await h.store.sessions.get(TENANT, session.session_id)
        assert now is not None and not now.flagged and now.fallbacks == 0


async def test_a_retry_after_the_handoff_does_not_run(tmp_path: Path) -> None:
    pipeline = Waits(breaks=True)
    options = HarnessOptions(
        pipeline=pipeline, settings=AgentSettings(max_attempts=3, retry_backoff_ms=1_000)
    )
    async with Harness(tmp_path, options) as h:
        session = await started(h, pipeline)
        await hand_off(h, session.session_id, wake=False)
        pipeline.go.set()
        await h.run_until_idle()
        assert pipeline.runs == 1  # the retry's pause ended in human mode: it stood down
        await assert_stood_down(h, session.session_id)


async def test_past_the_gate_the_turn_finishes_and_its_reply_is_withheld(tmp_path: Path) -> None:
    pipeline = Waits(gate="before")
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        session = await started(h, pipeline)
        sid = session.session_id
        await hand_off(h, sid, wake=True)
        assert pipeline.runs == 1 and pipeline.raised == []  # never cancelled
        await h.send("ana", "Hello? Is anyone there?")  # to the operator now
        pipeline.go.set()
        await h.run_until_idle()

        turn = await only_turn(h, sid)
        assert turn.phase is TurnPhase.COMMITTED and turn.irreversible_started
        record = await h.store.turns.get_record(TENANT, turn.turn_id)
        assert record is not None and record.replies == ()
        assert record.details["withheld_replies"] == ["Your refund is on its way."]
        assert await h.store.outbox.for_session(TENANT, sid) == [] and h.replies() == []
        now = await h.store.sessions.get(TENANT, sid)
        assert now is not None and now.mode is SessionMode.HUMAN
        assert now.state["data"] == {"r": 1}  # its effects kept
        assert (now.consumed_seq, now.last_seq) == (1, 2)  # the newer message waits
        assert pipeline.runs == 1


async def test_past_the_gate_a_failure_withholds_its_fallback(tmp_path: Path) -> None:
    pipeline = Waits(gate="before", breaks=True)
    options = HarnessOptions(pipeline=pipeline, settings=AgentSettings(max_attempts=1))
    async with Harness(tmp_path, options) as h:
        session = await started(h, pipeline)
        sid = session.session_id
        await hand_off(h, sid, wake=True)
        pipeline.go.set()
        await h.run_until_idle()

        turn = await only_turn(h, sid)
        assert turn.phase is TurnPhase.FAILED
        record = await h.store.turns.get_record(TENANT, turn.turn_id)
        assert record is not None and record.replies == ()
        assert record.details["withheld_replies"] == [AgentSettings().fallback_text]
        assert h.replies() == []
        now = await h.store.sessions.get(TENANT, sid)
        assert now is not None and now.mode is SessionMode.HUMAN
        assert now.consumed_seq == 1 and now.flagged  # flagged for the person it has already
        assert now.fallbacks == 0  # a withheld fallback is not counted


async def test_a_turn_past_the_gate_adopted_after_a_crash_is_never_answered_again(
    tmp_path: Path,
) -> None:
    """A crash cuts off a turn past the irreversible gate; the session was handed off
    meanwhile. The next driver stops it silently, consuming its range: after the resume
    the agent answers only what came later, and the irreversible step never runs twice."""
    pipeline = Waits(gate="before")
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        session = await started(h, pipeline)
        sid = session.session_id
        await hand_off(h, sid, wake=False)
        await h.crash()
        pipeline.go.set()
        await h.advance(60_000)
        await h.run_until_idle()

        turn = await only_turn(h, sid)
        assert turn.phase is TurnPhase.FAILED and turn.irreversible_started
        record = await h.store.turns.get_record(TENANT, turn.turn_id)
        assert record is not None and record.replies == ()
        assert (record.details["reason"], record.details["past_gate"]) == ("mode", True)
        group = await h.store.turns.get_group(TENANT, turn.group_id)
        assert group is not None and group.status is GroupStatus.HANDED_OFF
        now = await h.store.sessions.get(TENANT, sid)
        assert now is not None and (now.consumed_seq, now.last_seq) == (1, 1)
        assert h.replies() == []

        resume = ResumeAgent(TENANT, sid, Operator("k1", "Alice"), None, h.clock.now_ms(), "tr")
        await h.store.uow.commit(TENANT, [resume])
        await h.runtime.notify(TENANT, sid)
        await h.advance(60_000)
        await h.run_until_idle()
        assert pipeline.runs == 1  # nothing left to answer: the step did not run again
        assert [t.turn_id for t in await h.store.turns.list_turns(TENANT, sid)] == [turn.turn_id]

        await h.send("ana", "Thanks, and order 1002?")
        await h.advance(60_000)
        await h.run_until_idle()
        turns = await h.store.turns.list_turns(TENANT, sid)
        assert [(t.from_seq, t.to_seq) for t in turns] == [(0, 1), (1, 2)]  # only the new one
        assert pipeline.runs == 2


async def test_past_the_gate_its_drafts_are_withdrawn_when_the_session_is_handed_off(
    tmp_path: Path,
) -> None:
    pipeline = Waits(gate="before", draft="Your refund is on")
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        session = await started(h, pipeline)
        sid = session.session_id
        await h.advance(200)  # the draft is published
        await hand_off(h, sid, wake=True)
        kinds = (EventKind.REPLY_DRAFT_WITHDRAWN, EventKind.TURN_COMMITTED)
        query = EventQuery(session_id=sid, kinds=kinds)
        (withdrawn,) = await h.store.events.query(TENANT, query)  # before the turn ends
        assert withdrawn.kind is EventKind.REPLY_DRAFT_WITHDRAWN
        assert (withdrawn.data["attempt"], withdrawn.data["reason"]) == (1, "mode")
        pipeline.go.set()
        await h.run_until_idle()
        found = [e.kind for e in await h.store.events.query(TENANT, query)]
        assert found == [EventKind.REPLY_DRAFT_WITHDRAWN, EventKind.TURN_COMMITTED]
        assert h.replies() == []
