"""Drafts in the runtime (DESIGN §16), on the harness's virtual clock: a pipeline's
``ctx.draft`` reaches the bus coalesced, and an attempt that drafted and ends without its
reply (superseded, raised, past its deadline, failed) leaves a stored
``reply.draft_withdrawn`` in the very unit that records that end; a committed reply does not."""

import itertools
from pathlib import Path

from acf.adapters.memory.drafts import InProcessDraftBus
from acf.domain.agent_settings import AgentSettings
from acf.domain.events import EventKind, FabricEvent
from acf.domain.replies import PipelineResult
from acf.ports.drafts import Draft
from acf.ports.event_store import EventQuery
from acf.ports.pipeline import Pipeline, TurnContext
from acf.testing.harness import TENANT, Harness, HarnessOptions

WORDS = ["Your ", "order ", "1001 ", "is ", "on ", "its ", "way."]


class Writer:
    """Drafts its answer a word every ``every_ms``, then (per attempt) returns it, raises,
    or hangs."""

    name, version = "writer", "1"

    def __init__(self, every_ms: int = 40, fail: str = "") -> None:
        self.every_ms = every_ms
        self.fail = fail
        """"raise" or "hang" in the first attempt; "raise-all": in every one."""

    async def run(self, ctx: TurnContext) -> PipelineResult:
        text = ""
        for word in WORDS:
            text += word
            await ctx.draft(text)
            await ctx.clock.sleep(self.every_ms / 1000)
        if self.fail == "raise-all" or (self.fail == "raise" and ctx.attempt == 1):
            raise RuntimeError("the model went away")
        if self.fail == "hang" and ctx.attempt == 1:
            await ctx.clock.sleep(3600)
        return PipelineResult.reply(text)


class Quiet:
    name, version = "quiet", "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        await ctx.clock.sleep(0.2)
        return PipelineResult.reply("done")


async def started(
    tmp_path: Path, pipeline: Pipeline, settings: AgentSettings | None = None
) -> tuple[Harness, InProcessDraftBus]:
    opts = HarnessOptions(pipeline=pipeline, settings=settings or AgentSettings())
    h = Harness(tmp_path, opts)
    await h.start()
    return h, h.drafts


async def events(h: Harness) -> list[FabricEvent]:
    return list(await h.store.events.query(TENANT, EventQuery(limit=1000)))


def rebuilt(drafts: list[Draft]) -> dict[tuple[str, int], str]:
    """The text each (turn, attempt) showed, applying its drafts in order."""
    texts: dict[tuple[str, int], str] = {}
    for d in drafts:
        key = (d.turn_id, d.attempt)
        texts[key] = texts.get(key, "")[: d.offset] + d.text
    return texts


async def test_drafts_stream_and_the_committed_reply_replaces_them(tmp_path: Path) -> None:
    h, bus = await started(tmp_path, Writer())
    try:
        accepted = await h.send("alice", "where is my order?")
        sub = bus.subscribe(TENANT, accepted.session_id)
        await h.run_until_idle()

        drafts = sub.drain()
        assert h.replies("alice") == ["".join(WORDS)]
        [(key, shown)] = rebuilt(drafts).items()
        assert key == (drafts[0].turn_id, 1)
        # What was still pending behind the rate when the pipeline returned is dropped:
        # the reply replaces the drafts.
        assert "".join(WORDS).startswith(shown) and len(shown) > len(WORDS[0])
        assert drafts[0].offset == 0
        gaps = [b.at_ms - a.at_ms for a, b in itertools.pairwise(drafts)]
        assert gaps and min(gaps) >= 100  # coalesced: a word every 40 ms, ≤ 10 drafts/s
        kinds = [e.kind for e in await events(h)]
        assert EventKind.REPLY_DRAFT_WITHDRAWN not in kinds
    finally:
        await h.close()


async def test_a_superseded_attempt_withdraws_its_drafts_in_the_supersede_unit(
    tmp_path: Path,
) -> None:
    h, bus = await started(tmp_path, Writer(every_ms=100))
    try:
        first = await h.send("alice", "where is my order?")
        sub = bus.subscribe(TENANT, first.session_id)
        while not sub.drain():  # the window closes, the turn runs and drafts
            await h.advance(50)
        await h.send("alice", "the one from Monday")
        await h.run_until_idle()

        log = await events(h)
        superseded = next(e for e in log if e.kind is EventKind.TURN_SUPERSEDED)
        withdrawn = [e for e in log if e.kind is EventKind.REPLY_DRAFT_WITHDRAWN]
        assert len(withdrawn) == 1
        w = withdrawn[0]
        assert w.correlation.turn_id == superseded.correlation.turn_id
        assert w.data["attempt"] == 1 and isinstance(w.data["fence"], int)
        assert w.event_id is not None and superseded.event_id == w.event_id + 1  # one unit
        assert h.replies("alice") == ["".join(WORDS)]  # the restart answered
    finally:
        await h.close()


async def test_an_attempt_that_raised_withdraws_in_its_attempt_failed_unit(tmp_path: Path) -> None:
    h, _ = await started(tmp_path, Writer(fail="raise"))
    try:
        await h.send("alice", "where is my order?")
        await h.run_until_idle()

        log = await events(h)
        kinds = [e.kind for e in log]
        i = kinds.index(EventKind.REPLY_DRAFT_WITHDRAWN)
        assert kinds[i + 1] is EventKind.TURN_ATTEMPT_FAILED
        assert log[i].data["attempt"] == 1
        assert kinds.count(EventKind.REPLY_DRAFT_WITHDRAWN) == 1  # attempt 2 committed
        assert h.replies("alice") == ["".join(WORDS)]
    finally:
        await h.close()


async def test_an_attempt_past_its_deadline_withdraws(tmp_path: Path) -> None:
    h, _ = await started(tmp_path, Writer(fail="hang"), AgentSettings(deadline_ms=2_000))
    try:
        await h.send("alice", "where is my order?")
        await h.run_until_idle()

        log = await events(h)
        kinds = [e.kind for e in log]
        i = kinds.index(EventKind.REPLY_DRAFT_WITHDRAWN)
        assert kinds[i + 1] is EventKind.TURN_ATTEMPT_FAILED
        assert "deadline" in log[i + 1].data["error"]
        assert h.replies("alice") == ["".join(WORDS)]
    finally:
        await h.close()


async def test_a_failed_turn_withdraws_each_attempt(tmp_path: Path) -> None:
    h, _ = await started(tmp_path, Writer(fail="raise-all"), AgentSettings(max_attempts=2))
    try:
        await h.send("alice", "where is my order?")
        await h.run_until_idle()

        log = await events(h)
        withdrawn = [e.data["attempt"] for e in log if e.kind is EventKind.REPLY_DRAFT_WITHDRAWN]
        assert withdrawn == [1, 2]
        assert any(e.kind is EventKind.TURN_FAILED for e in log)
    finally:
        await h.close()


async def test_a_pipeline_that_never_drafts_leaves_no_withdrawal(tmp_path: Path) -> None:
    h, bus = await started(tmp_path, Quiet())
    try:
        first = await h.send("alice", "hello?")
        sub = bus.subscribe(TENANT, first.session_id)
        await h.advance(1_000)
        await h.send("alice", "anyone?")  # a supersede, maybe
        await h.run_until_idle()

        assert sub.drain() == []
        assert EventKind.REPLY_DRAFT_WITHDRAWN not in [e.kind for e in await events(h)]
    finally:
        await h.close()
