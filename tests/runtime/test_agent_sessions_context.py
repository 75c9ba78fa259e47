"""``ctx.agent_sessions`` on the embedded runtime (DESIGN §16, seed 004 Story 2): rows read
for the turn's conversation, written at once under the turn's fence with their progress
event, refused for a holder whose lease was taken over, for another conversation, and for
a second open row."""

import contextlib
from dataclasses import replace
from pathlib import Path

from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.errors import InvalidValue
from acf.domain.events import EventKind
from acf.domain.ids import new_id
from acf.domain.replies import PipelineResult
from acf.ports.agent_sessions import AgentSessionConflict
from acf.ports.event_store import EventQuery
from acf.ports.pipeline import TurnContext
from acf.service.running_turn import LeaseLost
from acf.testing.harness import AGENT, TENANT, Harness, HarnessOptions

ACTIVE, COMPLETED = AgentSessionStatus.ACTIVE, AgentSessionStatus.COMPLETED


class Delegates:
    """Writes its execution key ahead, waits on its first run (the test takes the lease
    away meanwhile), then completes the agent session."""

    name = "agent_service"
    version = "1"

    def __init__(self) -> None:
        self.runs = 0
        self.refused: list[Exception] = []

    async def _try(self, ctx: TurnContext, row: AgentSessionRow, event: str | None = None) -> None:
        try:
            await ctx.agent_sessions.save(row, event, status=row.status.value)
        except Exception as exc:
            self.refused.append(exc)
            raise

    async def run(self, ctx: TurnContext) -> PipelineResult:
        self.runs += 1
        c, now = ctx.correlation, ctx.clock.now_ms()
        assert c.session_id is not None
        row = await ctx.agent_sessions.open() or AgentSessionRow(
            c.tenant, new_id(), c.session_id, AGENT, "support", ACTIVE, now, now
        )
        if self.runs == 1:
            foreign = replace(row, session_id="another-conversation")
            with contextlib.suppress(InvalidValue):  # recorded in ``refused``
                await self._try(ctx, foreign)
        row = replace(row, execution_key=f"key-{self.runs}", execution_open=True)
        await self._try(ctx, row, "agent_service.key_written")
        if self.runs == 1:
            await ctx.clock.sleep(1.0)  # the lease is taken over meanwhile
        await self._try(ctx, replace(row, status=COMPLETED, agent_session_id="as-1"))
        second = AgentSessionRow(c.tenant, new_id(), c.session_id, AGENT, "other", ACTIVE, now, now)
        try:
            await self._try(ctx, second, "agent_service.second")
        except AgentSessionConflict:
            return PipelineResult.reply("unexpected: a second open row was saved")
        # The first is COMPLETED now: a new ACTIVE row of the conversation is fine.
        return PipelineResult.reply(f"done on run {self.runs}")


async def test_saves_are_fenced_scoped_and_one_open_row_per_conversation(
    tmp_path: Path,
) -> None:
    pipeline = Delegates()
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        accepted = await h.send("ana", "Book me a table.")
        await h.advance(700)  # the window closes; the first run waits
        sid = accepted.session_id
        assert [type(e) for e in pipeline.refused] == [InvalidValue]
        row = await h.store.agent_sessions.open_for(TENANT, sid)
        assert row is not None and (row.status, row.execution_key) == (ACTIVE, "key-1")
        (written,) = await h.store.events.query(
            TENANT, EventQuery(session_id=sid, kinds=(EventKind.TURN_PROGRESS,))
        )
        assert written.data == {
            "name": "agent_service.key_written",
            "agent": AGENT,
            "status": "ACTIVE",
        }
        assert written.correlation.turn_id is not None

        await h.steal_lease("ana")
        await h.advance(1000)  # the stale holder tries to complete: refused
        assert isinstance(pipeline.refused[-1], LeaseLost)
        stale = await h.store.agent_sessions.open_for(TENANT, sid)
        assert stale is not None and stale.status is ACTIVE and stale.agent_session_id is None

        await h.run_until_idle()  # the intruder's lease expires; the turn runs again
        assert h.replies("ana") == ["done on run 2"]
        rows = await h.store.agent_sessions.list_for(TENANT, sid)
        assert [(r.status, r.profile) for r in rows] == [(COMPLETED, "support"), (ACTIVE, "other")]
        assert rows[0].execution_key == "key-2" and rows[0].agent_session_id == "as-1"
        latest = await h.store.agent_sessions.latest_for(TENANT, sid, AGENT)
        assert latest is not None
        names = [
            e.data["name"]
            for e in await h.store.events.query(
                TENANT, EventQuery(session_id=sid, kinds=(EventKind.TURN_PROGRESS,))
            )
        ]
        assert names == ["agent_service.key_written"] * 2 + ["agent_service.second"]


class OpensTwice:
    """Saves two open rows of one conversation: the second is refused, with its event."""

    name = "agent_service"
    version = "1"

    def __init__(self) -> None:
        self.refused: list[Exception] = []

    async def run(self, ctx: TurnContext) -> PipelineResult:
        c, now = ctx.correlation, ctx.clock.now_ms()
        assert c.session_id is not None
        for profile in ("first", "second"):
            row = AgentSessionRow(
                c.tenant, new_id(), c.session_id, AGENT, profile, ACTIVE, now, now
            )
            try:
                await ctx.agent_sessions.save(row, "agent_service.opened", profile=profile)
            except AgentSessionConflict as exc:
                self.refused.append(exc)
        opened = await ctx.agent_sessions.open()
        return PipelineResult.reply(f"open: {None if opened is None else opened.profile}")


async def test_a_second_open_row_is_refused_with_nothing_of_its_unit(tmp_path: Path) -> None:
    pipeline = OpensTwice()
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        accepted = await h.send("ana", "Book me a table.")
        await h.run_until_idle()
        assert h.replies("ana") == ["open: first"] and len(pipeline.refused) == 1
        progress = await h.store.events.query(
            TENANT, EventQuery(session_id=accepted.session_id, kinds=(EventKind.TURN_PROGRESS,))
        )
        assert [e.data["profile"] for e in progress] == ["first"]
