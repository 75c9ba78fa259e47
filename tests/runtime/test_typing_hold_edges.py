"""Hold-while-typing at its edges (issue 23): what a hold costs in the turn's timing, a stop
posted just before its message, and drafts already shown.

The setting of ``test_typing_hold``: the web channel, window 600 ms (250 for a complete
text), typing grace 4 s, hold cap 8 s, a pipeline of 1 s; the first reply is ready at
``READY_AT`` (1250 ms), the turn having started running at 250 ms.
"""

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from acf.domain.config_versions import record_facts
from acf.domain.events import EventKind
from acf.domain.replies import PipelineResult
from acf.observability import FabricMetrics
from acf.ports.pipeline import TurnContext
from acf.testing.harness import TENANT, Harness
from tests.runtime.test_typing_hold import (
    QUESTION,
    READY_AT,
    RUN_MS,
    Lookup,
    events,
    hold_endings,
    options,
    until,
)

WINDOW_CLOSED_AT = 250
"""When the question's window closes and its turn starts running."""


def samples(metrics: FabricMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics.render()[0].decode())
        for s in family.samples
    }


async def test_held_time_is_kept_out_of_the_run_time_and_the_canarys_duration(
    tmp_path: Path,
) -> None:
    """The reply waited 3 s on purpose: the turn's run time (``run_ms``, the run-time
    metric, the record's duration a canary compares) stays the pipeline's 1 s; the
    customer-facing latency keeps the wait, and the commit says how long it held."""
    async with Harness(tmp_path, options(Lookup())) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        await until(h, start + 500)
        await h.typing("alice", True)
        await until(h, start + 4000)
        await h.typing("alice", False)
        await h.run_until_idle()
        committed_at = start + 4000 + 250  # min_window_ms after the stop
        held = committed_at - (start + READY_AT)
        (committed,) = await events(h, EventKind.TURN_COMMITTED)
        assert committed.at_ms == committed_at
        assert committed.data["held_ms"] == held
        assert committed.data["run_ms"] == RUN_MS
        assert committed.data["latency_ms"] == committed_at - start
        assert committed.correlation.turn_id is not None
        record = await h.store.turns.get_record(TENANT, committed.correlation.turn_id)
        assert record is not None
        assert record.details["held_ms"] == held
        assert record.ended_at_ms - record.started_at_ms == RUN_MS + held  # the real span
        assert record_facts(record).duration_ms == RUN_MS

        metrics = FabricMetrics()
        metrics.observe(await events(h, *EventKind))
        found = samples(metrics)
        committed_label = frozenset({("tenant", TENANT), ("outcome", "committed")})
        assert found[("acf_turn_run_seconds_sum", committed_label)] == RUN_MS / 1000
        latency = found[("acf_turn_latency_seconds_sum", committed_label)]
        assert latency == (committed_at - start) / 1000


async def test_a_message_posted_just_after_its_stop_joins_the_held_reply(tmp_path: Path) -> None:
    """Some clients post "typing stopped" just before the message: the hold waits
    ``min_window_ms`` after the stop, the message arrives within it and supersedes the
    held reply, as it would have during the typing; one answer to both, not a reply talking
    over the message in flight."""
    pipeline = Lookup()
    async with Harness(tmp_path, options(pipeline)) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        await until(h, start + 500)
        await h.typing("alice", True)
        await until(h, start + 3000)
        await h.typing("alice", False)
        await until(h, start + 3100)
        assert h.replies("alice") == []
        await h.send("alice", "And on Sunday?")
        await h.run_until_idle()
        assert h.replies("alice") == [f"answer: {QUESTION} | And on Sunday?"]
        assert await hold_endings(h) == [("message", 3100 - READY_AT)]
        (superseded,) = await events(h, EventKind.TURN_SUPERSEDED)
        assert superseded.data["held_ms"] == 3100 - READY_AT
        assert superseded.data["run_ms"] == RUN_MS  # the hold is no run time either


class Drafting(Lookup):
    """Streams its answer as a draft while it thinks (the web chat shows drafts)."""

    async def run(self, ctx: TurnContext) -> PipelineResult:
        await ctx.draft("answer: ")
        return await super().run(ctx)


async def test_no_hold_once_the_turns_drafts_are_shown(tmp_path: Path) -> None:
    """The customer watched the reply being written: holding it back would hide nothing."""
    async with Harness(tmp_path, options(Drafting())) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        await until(h, start + 500)
        await h.typing("alice", True)
        await h.run_until_idle()
        assert h.replies("alice") == [f"answer: {QUESTION}"]
        assert h.channel.sends[0].at_ms == start + READY_AT
        assert not await events(h, EventKind.TURN_HELD)


async def test_the_turn_starts_running_as_its_window_closes(tmp_path: Path) -> None:
    """What the run times above count from."""
    async with Harness(tmp_path, options(Lookup())) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        await h.run_until_idle()
        (running,) = await events(h, EventKind.TURN_STARTED)
        assert running.at_ms == start + WINDOW_CLOSED_AT
        (committed,) = await events(h, EventKind.TURN_COMMITTED)
        assert committed.data["run_ms"] == RUN_MS and "held_ms" not in committed.data
