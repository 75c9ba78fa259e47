"""Pipelines that misbehave (swallow cancellation, raise CancelledError) and runtime errors
mid-turn never leave a session stuck or two pipelines running for it."""

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from acf.domain.agent_settings import AgentSettings
from acf.domain.events import EventKind
from acf.domain.replies import PipelineResult
from acf.domain.supersede import SupersedeDecision
from acf.ports.event_store import EventQuery
from acf.ports.pipeline import TurnContext
from acf.service import running_turn
from acf.testing import invariants
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.pipeline import Script


class Stubborn:
    """Ignores the runtime's cancellation and keeps working (it gives in to the second one,
    at shutdown, or the test's event loop could not close)."""

    name, version = "stubborn", "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        ignored = False
        while True:
            try:
                await ctx.clock.sleep(10)
            except asyncio.CancelledError:
                if ignored:
                    raise
                ignored = True


class CancelsItselfOnce:
    name, version = "flaky", "1"

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, ctx: TurnContext) -> PipelineResult:
        self.calls += 1
        if self.calls == 1:
            raise asyncio.CancelledError  # a library's internal cancel leaking out
        return PipelineResult.reply("ok")


async def test_a_pipeline_that_ignores_cancellation_does_not_hold_the_session(
    tmp_path: Path,
) -> None:
    opts = HarnessOptions(
        pipeline=Stubborn(), settings=AgentSettings(deadline_ms=1000, max_attempts=1)
    )
    async with Harness(tmp_path, opts) as h:
        await h.send("alice", "hello there?")
        await h.advance(120_000)
        session = await h.store.sessions.find_open(TENANT, h.key("alice"))
        assert session is not None
        # Abandoned after the grace with its lease; the re-run (attempt 2 > 1) fails the turn.
        assert session.consumed_seq == session.last_seq
        assert h.replies("alice") == [AgentSettings().fallback_text]


async def test_a_pipeline_raising_cancelled_error_is_a_failed_attempt(tmp_path: Path) -> None:
    pipeline = CancelsItselfOnce()
    opts = HarnessOptions(pipeline=pipeline, settings=AgentSettings(retry_backoff_ms=100))
    async with Harness(tmp_path, opts) as h:
        await h.send("alice", "hello there?")
        await h.run_until_idle()
        assert h.replies("alice") == ["ok"]
        assert pipeline.calls == 2


async def test_a_runtime_error_mid_turn_stops_the_pipeline_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = running_turn.RunningTurn.unseen
    calls = {"n": 0}

    async def flaky(self: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database hiccup")
        return await original(self)

    monkeypatch.setattr(running_turn.RunningTurn, "unseen", flaky)
    async with Harness(tmp_path, HarnessOptions(script=Script(steps=({"sleep": 3000},)))) as h:
        await h.send("alice", "first question?")
        await h.advance(500)
        await h.send("alice", "second question?")
        await h.run_until_idle()
        assert h.tally.most_running == 1
        assert await invariants.check_all(h.store, [TENANT], h.channel, h.tally) == []


class StrayAfterGrace:
    """Ignores the deadline's cancellation, then tries an irreversible action late."""

    name, version = "stray", "1"

    def __init__(self) -> None:
        self.refused: list[str] = []

    async def run(self, ctx: TurnContext) -> PipelineResult:
        if ctx.attempt > 1:
            return PipelineResult.reply("second attempt")
        with contextlib.suppress(asyncio.CancelledError):
            await ctx.clock.sleep(60)
        await ctx.clock.sleep(20)  # past the grace: the runner gave the lease up
        try:
            await ctx.enter_irreversible()
        except Exception as exc:
            self.refused.append(type(exc).__name__)
            raise
        return PipelineResult.reply("stray")


async def test_a_pipeline_abandoned_after_the_grace_can_write_nothing(tmp_path: Path) -> None:
    pipeline = StrayAfterGrace()
    opts = HarnessOptions(pipeline=pipeline, settings=AgentSettings(deadline_ms=1000))
    async with Harness(tmp_path, opts) as h:
        await h.send("alice", "refund me please.")
        await h.run_until_idle()
        assert pipeline.refused == ["LeaseLost"]
        session = await h.store.sessions.find_open(TENANT, h.key("alice"))
        assert session is not None
        events = await h.store.events.query(TENANT, EventQuery(session_id=session.session_id))
        assert EventKind.TURN_IRREVERSIBLE_STARTED not in [e.kind for e in events]
        assert h.replies("alice") == ["second attempt"]


class AbsorbThenQueue:
    """The hook answers ABSORB, and would answer QUEUE if asked again about the same news."""

    name, version = "hook", "1"

    def __init__(self) -> None:
        self.asked: list[list[int]] = []

    def on_new_messages(self, ctx: TurnContext, new: Any) -> SupersedeDecision:
        self.asked.append([m.seq for m in new])
        return SupersedeDecision.ABSORB if len(self.asked) == 1 else SupersedeDecision.QUEUE

    async def run(self, ctx: TurnContext) -> PipelineResult:
        await ctx.clock.sleep(2)
        return PipelineResult.reply("seen " + ",".join(str(m.seq) for m in ctx.messages))


async def test_an_absorb_answer_stands_at_commit(tmp_path: Path) -> None:
    pipeline = AbsorbThenQueue()
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        await h.send("alice", "first question?")
        await h.advance(1000)
        await h.send("alice", "second question?")
        await h.run_until_idle()
        # ABSORB with the message still unseen at commit supersedes (DESIGN §6).
        assert h.replies("alice") == ["seen 1,2"]
        assert pipeline.asked[0] == [2]


async def test_the_resolved_config_cannot_be_changed_by_a_pipeline(tmp_path: Path) -> None:
    seen: list[str] = []

    class Meddler:
        name, version = "meddler", "1"

        async def run(self, ctx: TurnContext) -> PipelineResult:
            try:
                ctx.config["settings"]["max_attempts"] = 99  # type: ignore[index]
            except TypeError:
                seen.append("refused")
            return PipelineResult.reply("ok")

    async with Harness(tmp_path, HarnessOptions(pipeline=Meddler())) as h:
        await h.send("alice", "hello there?")
        await h.run_until_idle()
        assert seen == ["refused"]
