"""What a turn leaves for the next one, on the embedded runtime (DESIGN §4, §6, §16): the
agent session row a pipeline returns (``PipelineResult.agent_session``) is saved with the
turn's commit, never by a turn that is superseded, and refused when it is another
conversation's; a turn that ends FAILED clears ``meta.awaiting_answer``, so the
customer's next message waits for its window again."""

from dataclasses import replace
from pathlib import Path

from acf.domain.accumulation import CloseReason
from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.agent_settings import AgentSettings
from acf.domain.events import EventKind
from acf.domain.ids import new_id
from acf.domain.replies import PipelineResult
from acf.ports.checkpoints import Phase
from acf.ports.event_store import EventQuery
from acf.ports.pipeline import TurnContext
from acf.testing.harness import AGENT, TENANT, Harness, HarnessOptions

ACTIVE, COMPLETED = AgentSessionStatus.ACTIVE, AgentSessionStatus.COMPLETED
TWO_ATTEMPTS = AgentSettings(max_attempts=2, retry_backoff_ms=10)


def said(ctx: TurnContext) -> str:
    return " / ".join(m.text or "" for m in ctx.messages)


class Delegates:
    """Writes its execution key ahead during the run (as the agent service pipeline does)
    and returns the row COMPLETED; ``foreign``: a row of another conversation instead."""

    name = "agent_service"
    version = "1"

    def __init__(self, foreign: bool = False) -> None:
        self.foreign = foreign
        self.seen: list[AgentSessionRow | None] = []

    async def run(self, ctx: TurnContext) -> PipelineResult:
        c, now = ctx.correlation, ctx.clock.now_ms()
        assert c.session_id is not None
        found = await ctx.agent_sessions.open() or await ctx.agent_sessions.latest()
        self.seen.append(found)
        row = found or AgentSessionRow(
            c.tenant, new_id(), c.session_id, AGENT, "support", ACTIVE, now, now
        )
        key = f"key-{len(self.seen)}"
        ahead = replace(row, status=ACTIVE, execution_key=key, execution_open=True)
        await ctx.agent_sessions.save(ahead)
        ended = replace(ahead, status=COMPLETED, execution_open=False, agent_session_id="as-1")
        if self.foreign:
            ended = replace(ended, session_id="another-conversation")
        return PipelineResult.reply(f"done: {said(ctx)}", agent_session=ended)


async def test_the_row_is_saved_with_the_commit(tmp_path: Path) -> None:
    pipeline = Delegates()
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        rows: list[AgentSessionRow | None] = []

        async def before_commit() -> None:
            rows.append(await h.store.agent_sessions.open_for(TENANT, accepted.session_id))

        h.inject_at(Phase.PIPELINE_FINISHED, before_commit)
        accepted = await h.send("ana", "Book me a table.")
        await h.run_until_idle()

        assert h.replies("ana") == ["done: Book me a table."]
        (ahead,) = rows  # the pipeline returned: only the write ahead is stored
        assert ahead is not None and ahead.status is ACTIVE and ahead.execution_open
        (row,) = await h.store.agent_sessions.list_for(TENANT, accepted.session_id)
        assert (row.status, row.execution_key, row.execution_open) == (COMPLETED, "key-1", False)
        assert row.agent_session_id == "as-1"


async def test_a_superseded_turn_leaves_the_row_as_it_ran(tmp_path: Path) -> None:
    pipeline = Delegates()
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:

        async def late() -> None:
            await h.send("ana", "For four.", settle=False)

        h.inject_at(Phase.PIPELINE_FINISHED, late)
        accepted = await h.send("ana", "Book me a table.")
        await h.run_until_idle()

        assert h.replies("ana") == ["done: Book me a table. / For four."]
        superseded = EventQuery(kinds=(EventKind.TURN_SUPERSEDED,))
        assert len(await h.store.events.query(TENANT, superseded)) == 1
        first, restart = pipeline.seen
        assert first is None  # the restart sees the row as the first run left it:
        assert restart is not None and restart.status is ACTIVE and restart.execution_open
        assert restart.execution_key == "key-1" and restart.agent_session_id is None
        (row,) = await h.store.agent_sessions.list_for(TENANT, accepted.session_id)
        assert (row.status, row.execution_key) == (COMPLETED, "key-2")


async def test_another_conversations_row_fails_the_turn(tmp_path: Path) -> None:
    pipeline = Delegates(foreign=True)
    options = HarnessOptions(pipeline=pipeline, settings=TWO_ATTEMPTS)
    async with Harness(tmp_path, options) as h:
        accepted = await h.send("ana", "Book me a table.")
        await h.run_until_idle()

        (failed,) = await h.store.events.query(TENANT, EventQuery(kinds=(EventKind.TURN_FAILED,)))
        assert "belongs to another conversation" in failed.data["error"]
        assert len(pipeline.seen) == 2  # retried once, refused again
        (row,) = await h.store.agent_sessions.list_for(TENANT, accepted.session_id)
        # Only the write ahead, then settled by the FAILED turn (nothing will finish it).
        assert row.status is AgentSessionStatus.FAILED and not row.execution_open
        assert await h.store.agent_sessions.list_for(TENANT, "another-conversation") == []


class AsksThenBreaks:
    """Asks for the order number when told "refund"; fails on "boom"; else notes it."""

    name = "asks"
    version = "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        text = said(ctx)
        if "refund" in text:
            return PipelineResult.reply("Which order number?", awaiting_answer=True)
        if "boom" in text:
            raise RuntimeError("the brain is down")
        return PipelineResult.reply(f"noted: {text}")


async def awaiting(h: Harness, session_id: str) -> object:
    session = await h.store.sessions.get(TENANT, session_id)
    assert session is not None
    return session.state.get("meta", {}).get("awaiting_answer")


async def test_a_failed_turn_clears_the_awaited_answer(tmp_path: Path) -> None:
    options = HarnessOptions(pipeline=AsksThenBreaks(), settings=TWO_ATTEMPTS)
    async with Harness(tmp_path, options) as h:
        accepted = await h.send("ana", "I want a refund.")
        await h.run_until_idle()
        sid = accepted.session_id
        assert await awaiting(h, sid) is True

        await h.send("ana", "boom")  # the answer closes the window at once; the turn fails
        await h.run_until_idle()
        assert len(h.replies("ana")) == 2  # the question, the fallback
        assert await awaiting(h, sid) is None

        await h.send("ana", "1234")  # nothing is awaited: the window waits again
        assert len(h.replies("ana")) == 2
        await h.run_until_idle()
        assert h.replies("ana")[-1] == "noted: 1234"
        closes = await h.store.events.query(
            TENANT, EventQuery(session_id=sid, kinds=(EventKind.WINDOW_CLOSED,))
        )
        assert closes[-1].data["reason"] != CloseReason.AWAITED_ANSWER


class WritesAheadThenBreaks:
    """Writes its execution key ahead, then fails every attempt (the service is gone)."""

    name = "agent_service"
    version = "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        c, now = ctx.correlation, ctx.clock.now_ms()
        assert c.session_id is not None
        row = await ctx.agent_sessions.open() or AgentSessionRow(
            c.tenant, new_id(), c.session_id, AGENT, "support", ACTIVE, now, now
        )
        await ctx.agent_sessions.save(replace(row, execution_key="k", execution_open=True))
        raise RuntimeError("the stream broke")


async def test_a_failed_turn_settles_the_execution_it_left_open(tmp_path: Path) -> None:
    options = HarnessOptions(pipeline=WritesAheadThenBreaks(), settings=TWO_ATTEMPTS)
    async with Harness(tmp_path, options) as h:
        accepted = await h.send("ana", "Book me a table.")
        await h.run_until_idle()
        (row,) = await h.store.agent_sessions.list_for(TENANT, accepted.session_id)
        assert row.status is AgentSessionStatus.FAILED and not row.execution_open
        assert row.last_error is not None and row.last_error.startswith("the turn failed")
        assert await h.store.agent_sessions.open_for(TENANT, accepted.session_id) is None
