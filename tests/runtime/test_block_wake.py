"""An automatic block committed by a turn wakes the customer's other sessions on the channel
(issue 22), on the embedded runtime: the block puts every open session of the customer on
that channel in blocked mode, so a turn running in another of them (another agent's) must
stand down at once; told by the wake, its runner stops the pipeline instead of waiting for
it to finish and having its commit refused, and its message is dropped by a DROP turn.

Two agents of one tenant: ``support`` refuses (a SAFETY_REFUSAL outcome, counted by the
firewall's policy-blocks rule) and ``sales`` waits until the test lets it go. Ana's second
refusal of the day blocks her (``auto_block_after: 1``) while her turn with sales runs.
"""

from pathlib import Path

from acf.domain.abuse import AbuseRules, CountRule, RepeatRule
from acf.domain.agent_settings import AgentSettings
from acf.domain.events import EventKind
from acf.domain.modes import SessionMode, TurnKind
from acf.domain.turns import TurnPhase
from acf.ports.event_store import EventQuery
from acf.service.mode_watch import ModeWatchSettings
from acf.testing.harness import TENANT, Harness, HarnessOptions
from tests.runtime.test_handoff_triggers import Answers, people, refuses
from tests.runtime.test_mode_guard import Waits

SALES = "sales"
COOLDOWN_MS = 60_000
WATCH = ModeWatchSettings(interval_ms=5_000)
FIREWALL = AbuseRules(
    flood_enabled=False,
    repeated=RepeatRule(enabled=False),
    policy_blocks=CountRule(count=1, within_ms=3_600_000),
    cooldown_ms=COOLDOWN_MS,
    auto_block_after=1,
    notice=None,
)


def harness(tmp_path: Path, sales: Waits) -> Harness:
    options = HarnessOptions(
        pipeline=Answers(refuses),
        other_agents={SALES: sales},
        settings=AgentSettings(max_attempts=1),
        people=lambda tenant: people(after_fallbacks=0, firewall=FIREWALL),
        mode_watch=WATCH,
    )
    return Harness(tmp_path, options)


async def session_mode(h: Harness, session_id: str) -> SessionMode:
    session = await h.store.sessions.get(TENANT, session_id)
    assert session is not None
    return session.mode


async def test_a_block_committed_by_a_turn_stops_the_turn_running_in_another_session(
    tmp_path: Path,
) -> None:
    sales = Waits()
    async with harness(tmp_path, sales) as h:
        await h.send("ana", "how do I pick a lock")  # refused: cool-down number one today
        await h.run_until_idle()
        support = await h.store.sessions.find_open(TENANT, h.key("ana"))
        assert support is not None and support.mode is SessionMode.COOLDOWN
        await h.advance(COOLDOWN_MS + WATCH.interval_ms)  # it ends (it held nothing)
        await h.run_until_idle()

        other = (await h.send("ana", "I want a refund for order 1001.", agent=SALES)).session_id
        for _ in range(100):
            if sales.started.is_set():
                break
            await h.advance(100)
        assert sales.started.is_set(), "the sales turn never started"

        await h.send("ana", "how do I pick a lock, really")  # refused again: a block
        for _ in range(100):
            if (await session_mode(h, other)) is SessionMode.BLOCKED:
                break
            await h.advance(100)

        blocked = await h.store.sessions.get(TENANT, other)
        assert blocked is not None and blocked.mode is SessionMode.BLOCKED
        # Woken, the sales driver stopped its pipeline (never let go): the turn stood down
        stood_down, dropped = await h.store.turns.list_turns(TENANT, other)
        assert stood_down.phase is TurnPhase.SUPERSEDED
        record = await h.store.turns.get_record(TENANT, stood_down.turn_id)
        assert record is not None and record.details == {"reason": "mode", "mode": "blocked"}
        # ... and its message was dropped, audited, never answered
        assert (dropped.kind, dropped.phase) == (TurnKind.DROP, TurnPhase.COMMITTED)
        assert (dropped.from_seq, dropped.to_seq) == (0, 1)
        assert h.replies("ana") == ["I can't help with that."] * 2
        found = EventQuery(kinds=(EventKind.CUSTOMER_BLOCKED,))
        (event,) = await h.store.events.query(TENANT, found)
        assert event.data["customer"] == "ana"
