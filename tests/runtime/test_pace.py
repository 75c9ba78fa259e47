"""Per-customer pace on the embedded runtime (issue 23, ``acf.domain.pace``): the agent's
commits learn the customer's gaps between fragments into ``meta.pace``, and, when the
channel's ``pace`` is on, the next window after plain text follows them."""

from pathlib import Path
from typing import Any

import pytest

from acf.domain.accumulation import CloseReason
from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind
from acf.domain.pace import from_state
from acf.domain.policy import AccumulationMode, ChannelPolicy
from acf.ports.event_store import EventQuery
from acf.ports.session_store import PatchState
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.pipeline import Script


def options(pace: bool, steps: tuple[dict[str, Any], ...] = ()) -> HarnessOptions:
    policy = ChannelPolicy(AccumulationMode.ADAPTIVE, 1200, 400, 4000, 5000, pace=pace)
    return HarnessOptions(
        settings=AgentSettings(channel_policies={Channel.WEB: policy}),
        # The pipeline keeps state of its own: the pace must survive its patches.
        script=Script(steps=steps, state_patch={"data": {"seen": True}}),
    )


async def meta_of(h: Harness, session_id: str) -> dict[str, Any]:
    session = await h.store.sessions.get(TENANT, session_id)
    assert session is not None
    assert session.state["data"] == {"seen": True}
    return dict(session.state["meta"])


@pytest.mark.parametrize(
    ("pace", "window", "reason"), [(True, 469, "pace"), (False, 1200, "default")]
)
async def test_a_fast_customers_window_follows_their_pace(
    tmp_path: Path, pace: bool, window: int, reason: CloseReason
) -> None:
    async with Harness(tmp_path, options(pace)) as h:
        for _ in range(3):  # three thoughts, each in two fragments 300 ms apart
            accepted = await h.send("fast", "I ordered a lamp")
            await h.advance(300)
            await h.send("fast", "it arrived broken")
            await h.run_until_idle()
            await h.advance(20_000)
        sid = accepted.session_id
        assert len(h.replies("fast")) == 3
        meta = await meta_of(h, sid)
        if pace:
            # gaps of 300 ms (the answers after each reply do not count): 300 + 2 * 84.4
            learned = from_state(meta["pace"])
            assert learned is not None
            assert (learned.samples, learned.gap_ms, learned.spread_ms) == (3, 300.0, 84.4)
        else:
            assert "pace" not in meta  # nothing learned while it is off

        sent_at = h.clock.now_ms()
        await h.send("fast", "one more thing")
        opened = await h.store.events.query(
            TENANT, EventQuery(session_id=sid, kinds=(EventKind.WINDOW_OPENED,))
        )
        assert opened[-1].data["close_at_ms"] - sent_at == window
        assert opened[-1].data["reason"] == reason
        await h.run_until_idle()
        closed = await h.store.events.query(
            TENANT, EventQuery(session_id=sid, kinds=(EventKind.WINDOW_CLOSED,))
        )
        assert closed[-1].data["reason"] == reason
        assert len(h.replies("fast")) == 4


async def test_a_fragment_folded_in_by_a_supersede_is_learned(tmp_path: Path) -> None:
    """The fragment came after the window closed, while the pipeline ran: the supersede put
    both in one turn, and its gap is exactly what the window should have covered."""
    async with Harness(tmp_path, options(True, steps=({"sleep": 1000},))) as h:
        accepted = await h.send("slow", "I ordered a lamp")
        await h.advance(1800)  # the window closed at 1200; the pipeline runs until 2200
        await h.send("slow", "it arrived broken")
        await h.run_until_idle()
        assert h.replies("slow") == ["echo: I ordered a lamp | it arrived broken"]
        learned = from_state((await meta_of(h, accepted.session_id))["pace"])
        assert learned is not None
        assert (learned.samples, learned.gap_ms) == (1, 1800.0)


async def test_a_concurrent_state_change_does_not_cost_a_stateless_turn_its_commit(
    tmp_path: Path,
) -> None:
    """The pipeline writes no state; while it runs, the session's state changes (config
    overrides set from the API, say). Learning the pace must not make its commit lose to
    that change: it re-reads the state, learns again, and commits, the pipeline run once."""
    policy = ChannelPolicy(AccumulationMode.ADAPTIVE, 1200, 400, 4000, 5000, pace=True)
    opts = HarnessOptions(
        settings=AgentSettings(channel_policies={Channel.WEB: policy}),
        script=Script(steps=({"sleep": 1000},)),  # no state of its own
    )
    async with Harness(tmp_path, opts) as h:
        accepted = await h.send("alice", "I ordered a lamp")
        await h.advance(300)
        await h.send("alice", "it arrived broken")
        await h.advance(1800)  # the window closed at 1500; the pipeline runs until 2500
        session = await h.store.sessions.get(TENANT, accepted.session_id)
        assert session is not None
        change = PatchState(session.session_id, session.state_version, {"data": {"x": 1}}, 0)
        await h.store.uow.commit(TENANT, [change])
        await h.run_until_idle()
        assert h.replies("alice") == ["echo: I ordered a lamp | it arrived broken"]
        query = EventQuery(session_id=accepted.session_id, limit=1000)
        kinds = [e.kind for e in await h.store.events.query(TENANT, query)]
        assert kinds.count(EventKind.TURN_STARTED) == 1
        assert EventKind.TURN_ATTEMPT_FAILED not in kinds
        after = await h.store.sessions.get(TENANT, accepted.session_id)
        assert after is not None
        assert after.state["data"] == {"x": 1}  # the concurrent change is kept
        learned = from_state(after.state["meta"]["pace"])
        assert learned is not None and (learned.samples, learned.gap_ms) == (1, 300.0)


async def test_a_pipeline_that_writes_state_still_conflicts(tmp_path: Path) -> None:
    """Its own patch was computed from the state it read: a concurrent change fails the
    attempt as it does without pace (the retry runs on the new state)."""
    async with Harness(tmp_path, options(True, steps=({"sleep": 1000},))) as h:
        accepted = await h.send("alice", "Where is my order?")
        await h.advance(1000)  # the window closed at 400; the pipeline runs until 1400
        session = await h.store.sessions.get(TENANT, accepted.session_id)
        assert session is not None
        change = PatchState(session.session_id, session.state_version, {"data": {"x": 1}}, 0)
        await h.store.uow.commit(TENANT, [change])
        await h.run_until_idle()
        failed = await h.store.events.query(
            TENANT,
            EventQuery(session_id=accepted.session_id, kinds=(EventKind.TURN_ATTEMPT_FAILED,)),
        )
        assert len(failed) == 1 and "VersionConflict" in failed[0].data["error"]
        assert len(h.replies("alice")) == 1
