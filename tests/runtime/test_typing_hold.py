"""Hold-while-typing (issue 23): a reply ready while the customer types waits in its RUNNING
turn, uncommitted, until the typing stops or goes stale, the cap, a new message or the
session leaving agent mode; never after the commit.

The web channel (the one with typing signals), an explicit policy: window 600 ms (250 for a
complete text), typing grace 4 s, hold cap 8 s. The pipeline takes 1 s and looks the
customer's profile up through ``ctx.step`` (its input: the customer, unchanged by a
supersede), so a re-run shows whether it reused the memoised work.
"""

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from acf.domain.accumulation import Typing
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import new_trace_id
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, AccumulationMode, ChannelPolicy
from acf.domain.replies import PipelineResult
from acf.observability import FabricMetrics
from acf.ports.checkpoints import Phase
from acf.ports.event_store import AppendEvent, EventQuery
from acf.ports.pipeline import TurnContext
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.people import People

POLICY = ChannelPolicy(AccumulationMode.ADAPTIVE, 600, 250, 3000, 4000, typing_hold_ms=8000)
QUESTION = "What are your opening hours?"  # complete: the window closes after 250 ms
RUN_MS = 1000
READY_AT = 250 + RUN_MS
"""When the first reply is ready (the window closed at 250, the pipeline took 1 s)."""


class Lookup:
    """Looks the customer up (a memoised step), thinks for a second, answers."""

    name = "lookup"
    version = "1"

    def __init__(self, irreversible: bool = False) -> None:
        self.profile_runs = 0
        self.irreversible = irreversible

    async def _profile(self, customer: str) -> dict[str, Any]:
        self.profile_runs += 1
        return {"customer": customer}

    async def run(self, ctx: TurnContext) -> PipelineResult:
        await ctx.step("profile", self._profile, ctx.correlation.session_id)
        if self.irreversible:
            await ctx.enter_irreversible()
        await ctx.clock.sleep(RUN_MS / 1000)
        return PipelineResult.reply("answer: " + " | ".join(m.text or "" for m in ctx.messages))


def options(pipeline: Lookup, policy: ChannelPolicy = POLICY, **settings: Any) -> HarnessOptions:
    policies = {**DEFAULT_CHANNEL_POLICIES, Channel.WEB: policy}
    return HarnessOptions(
        pipeline=pipeline, settings=AgentSettings(channel_policies=policies, **settings)
    )


async def events(h: Harness, *kinds: EventKind) -> list[FabricEvent]:
    return await h.store.events.query(TENANT, EventQuery(kinds=kinds, limit=10_000))


async def hold_endings(h: Harness) -> list[tuple[str, int]]:
    return [
        (e.data["ended"], e.data["held_ms"]) for e in await events(h, EventKind.TURN_HOLD_ENDED)
    ]


async def until(h: Harness, at_ms: int) -> None:
    await h.advance(at_ms - h.clock.now_ms())


async def test_a_reply_ready_while_the_customer_types_waits_for_typing_to_stop(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, options(Lookup())) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        await until(h, start + 500)
        await h.typing("alice", True)  # while the pipeline runs
        await until(h, start + 2500)
        await h.typing("alice", True)  # the web chat repeats it every 2 s
        # In memory too (embedded mode): the session's driver is active while it runs.
        assert h.runtime.parts.typing[h.key("alice")] == Typing(True, start + 2500)
        await until(h, start + 4400)
        assert h.replies("alice") == []  # held: no turn committed yet
        (held,) = await events(h, EventKind.TURN_HELD)
        assert held.at_ms == start + READY_AT
        assert held.data == {"cap_ms": 8000, "typing_at_ms": start + 500}
        assert not await events(h, EventKind.TURN_COMMITTED)
        await h.typing("alice", False)
        # A message posted just after its stop may still be in flight: min_window_ms more.
        await until(h, start + 4400 + 249)
        assert h.replies("alice") == []
        await h.run_until_idle()
        assert h.replies("alice") == [f"answer: {QUESTION}"]
        assert h.channel.sends[0].at_ms == start + 4400 + 250
        assert await hold_endings(h) == [("stopped", 4650 - READY_AT)]
        assert held.correlation.turn_id is not None
        record = await h.store.turns.get_record(TENANT, held.correlation.turn_id)
        assert record is not None and record.details["held_ms"] == 4650 - READY_AT


async def test_a_hold_ends_when_the_typing_signal_goes_stale(tmp_path: Path) -> None:
    async with Harness(tmp_path, options(Lookup())) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        await until(h, start + 500)
        await h.typing("alice", True)  # and nothing after: the client went away
        await until(h, start + 4499)
        assert h.replies("alice") == []
        await until(h, start + 4500)  # 4 s (the grace) after the last start
        assert h.replies("alice") == [f"answer: {QUESTION}"]
        assert await hold_endings(h) == [("stale", 4500 - READY_AT)]


async def test_a_hold_ends_at_the_cap_however_long_the_customer_types(tmp_path: Path) -> None:
    policy = replace(POLICY, typing_hold_ms=3000)
    async with Harness(tmp_path, options(Lookup(), policy)) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        for at in range(500, 10_000, 2000):
            await until(h, start + at)
            await h.typing("alice", True)
            if start + at < start + READY_AT + 3000:
                assert h.replies("alice") == []
        assert h.replies("alice") == [f"answer: {QUESTION}"]
        assert await hold_endings(h) == [("cap", 3000)]
        (delivered,) = h.channel.sends
        assert delivered.at_ms == start + READY_AT + 3000


async def test_a_message_during_the_hold_supersedes_and_the_rerun_reuses_the_memo(
    tmp_path: Path,
) -> None:
    pipeline = Lookup()
    async with Harness(tmp_path, options(pipeline)) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        await until(h, start + 500)
        await h.typing("alice", True)
        await until(h, start + 2000)
        await h.send("alice", "And on Sunday?")
        await h.run_until_idle()
        assert h.replies("alice") == [f"answer: {QUESTION} | And on Sunday?"]
        assert await hold_endings(h) == [("message", 2000 - READY_AT)]
        assert [e.data["reason"] for e in await events(h, EventKind.TURN_SUPERSEDED)] == [
            "new_messages"
        ]
        assert pipeline.profile_runs == 1  # its input (the customer) did not change
        assert len(await events(h, EventKind.TURN_HELD)) == 1  # typing was the message's own


async def test_past_the_irreversible_gate_a_message_commits_the_held_reply_at_once(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, options(Lookup(irreversible=True))) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        await until(h, start + 500)
        await h.typing("alice", True)
        await until(h, start + 2000)
        await h.send("alice", "And on Sunday?")
        assert h.replies("alice") == [f"answer: {QUESTION}"]  # committed at the message
        await h.run_until_idle()
        assert h.replies("alice") == [f"answer: {QUESTION}", "answer: And on Sunday?"]
        assert await hold_endings(h) == [("message", 2000 - READY_AT)]
        assert not await events(h, EventKind.TURN_SUPERSEDED)
        committed = await events(h, EventKind.TURN_COMMITTED)
        assert committed[0].at_ms == start + 2000


async def test_a_handoff_during_the_hold_stands_the_turn_down(tmp_path: Path) -> None:
    async with Harness(tmp_path, options(Lookup())) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        await until(h, start + 500)
        await h.typing("alice", True)
        await until(h, start + 2000)
        await People(h).hand_off("alice")
        await h.run_until_idle()
        assert [r for r in h.replies("alice") if r.startswith("answer")] == []
        assert [ended for ended, _ in await hold_endings(h)] == ["mode"]
        (superseded,) = await events(h, EventKind.TURN_SUPERSEDED)
        assert superseded.data["reason"] == "mode"


async def test_a_crash_during_the_hold_reruns_the_turn_and_delivers_once(tmp_path: Path) -> None:
    """The re-run holds on from the turn's first hold: its cap (8 s) has passed by the time
    the dead holder's lease (15 s) expired, so it commits at once, though the customer types
    on; a fresh cap would have held the reply until she stopped at 20 s."""
    pipeline = Lookup()
    async with Harness(tmp_path, options(pipeline)) as h:
        start = h.clock.now_ms()
        h.crash_at(Phase.TYPING_HOLD)
        await h.send("alice", QUESTION)
        for at in range(500, 20_000, 2000):
            await until(h, start + at)
            await h.typing("alice", True)
        assert h.crashes == 1
        await h.typing("alice", False)
        await h.run_until_idle()
        assert h.replies("alice") == [f"answer: {QUESTION}"]
        assert pipeline.profile_runs == 1
        started = await events(h, EventKind.TURN_STARTED)
        assert [e.data.get("attempt") for e in started] == [1, 2]
        # The new process's driver held no lease when the signals came: the re-run read
        # them from the store, and was held again, from where the first hold began.
        first, again = await events(h, EventKind.TURN_HELD)
        assert first.at_ms == start + READY_AT and "since_ms" not in first.data
        assert again.data["since_ms"] == first.at_ms
        rerun_ready = again.at_ms
        assert rerun_ready > start + READY_AT + 8000  # the cap had passed already
        assert await hold_endings(h) == [("cap", rerun_ready - first.at_ms)]
        (delivered,) = h.channel.sends
        assert delivered.at_ms == rerun_ready < start + 18_500  # while she still typed


async def test_a_signal_stored_by_another_process_holds_the_reply(tmp_path: Path) -> None:
    """Distributed mode: the typing reached an API process, which stored it and woke the
    session; the worker running the turn has nothing in memory and reads the store."""
    async with Harness(tmp_path, options(Lookup())) as h:
        start = h.clock.now_ms()
        accepted = await h.send("alice", QUESTION)
        await until(h, start + 500)
        correlation = Correlation(TENANT, new_trace_id(), accepted.session_id)
        typing = FabricEvent(EventKind.TYPING_STARTED, h.clock.now_ms(), correlation)
        await h.store.uow.commit(TENANT, [AppendEvent(typing)])
        await h.runtime.notify(TENANT, accepted.session_id)
        await until(h, start + 3000)
        assert h.replies("alice") == []
        stopped = FabricEvent(EventKind.TYPING_STOPPED, h.clock.now_ms(), correlation)
        await h.store.uow.commit(TENANT, [AppendEvent(stopped)])
        await h.runtime.notify(TENANT, accepted.session_id)
        await h.run_until_idle()
        assert h.replies("alice") == [f"answer: {QUESTION}"]
        assert await hold_endings(h) == [("stopped", 3250 - READY_AT)]


async def test_the_deadline_does_not_run_during_a_hold(tmp_path: Path) -> None:
    async with Harness(tmp_path, options(Lookup(), deadline_ms=2000)) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        for at in (500, 2500, 4500, 6500):
            await until(h, start + at)
            await h.typing("alice", True)
        await until(h, start + 8000)
        assert h.replies("alice") == []
        await h.typing("alice", False)
        await h.run_until_idle()
        assert h.replies("alice") == [f"answer: {QUESTION}"]
        assert await hold_endings(h) == [("stopped", 8250 - READY_AT)]
        assert not await events(h, EventKind.TURN_ATTEMPT_FAILED, EventKind.TURN_FAILED)


NO_HOLD = [
    ("typing_hold_ms 0", replace(POLICY, typing_hold_ms=0), [(500, True)]),
    ("typing gone stale by the run's end", replace(POLICY, typing_grace_ms=700), [(300, True)]),
    ("typing stopped before the run's end", POLICY, [(500, True), (900, False)]),
    ("typing before the message was the message's own", POLICY, [(-1, True)]),
]


@pytest.mark.parametrize(
    ("policy", "signals"), [row[1:] for row in NO_HOLD], ids=[row[0] for row in NO_HOLD]
)
async def test_no_hold(
    tmp_path: Path, policy: ChannelPolicy, signals: list[tuple[int, bool]]
) -> None:
    async with Harness(tmp_path, options(Lookup(), policy)) as h:
        await h.send("alice", "Hi there.")  # typing counts once a session exists
        await h.run_until_idle()
        base = h.clock.now_ms() + 1000
        steps: list[tuple[int, bool | None]] = [*signals, (0, None)]  # None: the question
        for at, active in sorted(steps, key=lambda step: step[0]):
            await until(h, base + at)
            if active is None:
                await h.send("alice", QUESTION)
            else:
                await h.typing("alice", active)
        await h.run_until_idle()
        assert not await events(h, EventKind.TURN_HELD)
        last = h.channel.sends[-1]
        assert h.replies("alice")[-1] == f"answer: {QUESTION}"
        assert last.at_ms == base + READY_AT  # as soon as it was ready


async def test_holds_are_counted_by_how_they_ended(tmp_path: Path) -> None:
    async with Harness(tmp_path, options(Lookup())) as h:
        start = h.clock.now_ms()
        await h.send("alice", QUESTION)
        await until(h, start + 500)
        await h.typing("alice", True)
        await h.run_until_idle()
        metrics = FabricMetrics()
        metrics.observe(await events(h, *EventKind))
        found = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(metrics.render()[0].decode())
            for s in family.samples
        }
        stale = frozenset({("tenant", TENANT), ("ended", "stale")})
        assert found[("acf_typing_holds_total", stale)] == 1
        tenant = frozenset({("tenant", TENANT)})
        assert found[("acf_typing_hold_seconds_count", tenant)] == 1
        assert found[("acf_typing_hold_seconds_sum", tenant)] == (4500 - READY_AT) / 1000
