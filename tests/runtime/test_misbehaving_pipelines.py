"""Pipelines that misbehave (swallow cancellation, raise CancelledError) and runtime errors
mid-turn never leave a session stuck or two pipelines running for it."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from acf.domain.agent_settings import AgentSettings
from acf.domain.replies import PipelineResult
from acf.ports.pipeline import TurnContext
from acf.service import turn_runner
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
    original = turn_runner.TurnRunner._unseen
    calls = {"n": 0}

    async def flaky(self: Any, frame: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database hiccup")
        return await original(self, frame)

    monkeypatch.setattr(turn_runner.TurnRunner, "_unseen", flaky)
    async with Harness(tmp_path, HarnessOptions(script=Script(steps=({"sleep": 3000},)))) as h:
        await h.send("alice", "first question?")
        await h.advance(500)
        await h.send("alice", "second question?")
        await h.run_until_idle()
        assert h.tally.most_running == 1
        assert await invariants.check_all(h.store, [TENANT], h.channel, h.tally) == []
