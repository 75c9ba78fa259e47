"""A cool-down holds the customer's messages and then releases them as ONE agent turn (issue
22), on the embedded runtime and the virtual clock: nothing is answered while it runs
(the messages are stored); at its end the mode watch wakes the session, and its driver ends
the cool-down in the same unit that opens the turn over every held message, whose record
says so (category ABUSE_SUSPECTED, ``held_by``), also when that turn is recovered after a
crash; a cool-down that held nothing just ends; a window open when it starts stands down.
The cool-down is the store's own op (``StartCooldown``), as the firewall commits it."""

from pathlib import Path

import pytest

from acf.domain.abuse import ABUSE_CATEGORY
from acf.domain.errors import Conflict
from acf.domain.events import EventKind
from acf.domain.ids import new_id
from acf.domain.modes import SessionMode
from acf.domain.turns import GroupStatus, TurnGroup, TurnPhase
from acf.ports.checkpoints import Phase
from acf.ports.event_store import EventQuery
from acf.ports.session_modes import EndCooldown, StartCooldown
from acf.ports.session_store import SessionRecord
from acf.service import mode_turn_units, turn_progress_units
from acf.service.mode_watch import ModeWatchSettings
from acf.service.turn_progress_units import Versions
from acf.testing.harness import TENANT, Harness, HarnessOptions

COOLDOWN_MS = 120_000
WATCH = ModeWatchSettings(interval_ms=5_000)


def options() -> HarnessOptions:
    return HarnessOptions(mode_watch=WATCH)


async def session_of(h: Harness, session_id: str) -> SessionRecord:
    session = await h.store.sessions.get(TENANT, session_id)
    assert session is not None
    return session


async def cool_down(h: Harness, session_id: str, ms: int = COOLDOWN_MS) -> int:
    """Hold the session for ``ms`` as the firewall does; returns when it ends."""
    now = h.clock.now_ms()
    op = StartCooldown(TENANT, session_id, now + ms, "flood", "25 messages a minute", now, "tr")
    await h.store.uow.commit(TENANT, [op])
    await h.runtime.notify(TENANT, session_id)
    await h.settle()
    return now + ms


async def count(h: Harness, session_id: str, kind: EventKind) -> int:
    found = await h.store.events.query(TENANT, EventQuery(session_id=session_id, kinds=(kind,)))
    return len(found)


async def test_the_held_messages_are_answered_as_one_turn_when_the_cooldown_ends(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, options()) as h:
        first = await h.send("ana", "Hi")
        await h.run_until_idle()
        sid = first.session_id
        until = await cool_down(h, sid)

        for text in ("buy", "buy now", "BUY"):
            await h.send("ana", text)
            await h.advance(10_000)
        await h.advance(until - 1 - h.clock.now_ms())
        assert h.replies("ana") == ["echo: Hi"]  # held: nothing answered
        held = await session_of(h, sid)
        assert held.mode is SessionMode.COOLDOWN
        assert (held.consumed_seq, held.last_seq) == (1, 4)
        assert await h.store.turns.live_turn(TENANT, sid) is None

        await h.advance(WATCH.interval_ms + 1)  # the watch's next check after the end
        await h.run_until_idle()

        assert h.replies("ana") == ["echo: Hi", "echo: buy | buy now | BUY"]
        released = await session_of(h, sid)
        assert released.mode is SessionMode.AGENT
        assert (released.consumed_seq, released.last_seq) == (4, 4)
        turns = await h.store.turns.list_turns(TENANT, sid)
        assert [(t.phase, t.from_seq, t.to_seq) for t in turns] == [
            (TurnPhase.COMMITTED, 0, 1),
            (TurnPhase.COMMITTED, 1, 4),
        ]
        record = await h.store.turns.get_record(TENANT, turns[1].turn_id)
        assert record is not None
        assert record.details["category"] == ABUSE_CATEGORY
        assert record.details["held_by"] == "cooldown"
        first_record = await h.store.turns.get_record(TENANT, turns[0].turn_id)
        assert first_record is not None and "held_by" not in first_record.details
        assert await count(h, sid, EventKind.ABUSE_COOLDOWN_ENDED) == 1


async def test_the_released_turn_recovered_after_a_crash_still_says_it_answers_held_messages(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, options()) as h:
        first = await h.send("ana", "Hi")
        await h.run_until_idle()
        sid = first.session_id
        until = await cool_down(h, sid)
        await h.send("ana", "again")
        await h.send("ana", "and again")

        h.crash_at(Phase.RUN_STARTED)  # the released turn started; the process dies
        await h.advance(until + WATCH.interval_ms - h.clock.now_ms())
        await h.run_until_idle()

        assert h.crashes == 1
        assert h.replies("ana") == ["echo: Hi", "echo: again | and again"]
        turns = await h.store.turns.list_turns(TENANT, sid)
        assert [t.phase for t in turns] == [TurnPhase.COMMITTED, TurnPhase.COMMITTED]
        record = await h.store.turns.get_record(TENANT, turns[1].turn_id)
        assert record is not None and record.attempt == 2  # recovered: its second attempt
        assert record.details["category"] == ABUSE_CATEGORY
        assert record.details["held_by"] == "cooldown"


async def test_a_cooldown_that_held_nothing_just_ends(tmp_path: Path) -> None:
    async with Harness(tmp_path, options()) as h:
        first = await h.send("ana", "Hi")
        await h.run_until_idle()
        sid = first.session_id
        until = await cool_down(h, sid)
        await h.advance(until + WATCH.interval_ms - h.clock.now_ms())
        await h.run_until_idle()

        session = await session_of(h, sid)
        assert session.mode is SessionMode.AGENT
        assert session.mode_until_ms is None
        assert await count(h, sid, EventKind.ABUSE_COOLDOWN_ENDED) == 1
        assert len(await h.store.turns.list_turns(TENANT, sid)) == 1  # no turn opened

        await h.send("ana", "Back")
        await h.run_until_idle()
        assert h.replies("ana") == ["echo: Hi", "echo: Back"]
        turns = await h.store.turns.list_turns(TENANT, sid)
        record = await h.store.turns.get_record(TENANT, turns[-1].turn_id)
        assert record is not None and "held_by" not in record.details  # an ordinary turn


async def test_a_window_open_when_the_cooldown_starts_stands_down_and_its_message_waits(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path, options()) as h:
        accepted = await h.send("ana", "spam spam")
        sid = accepted.session_id
        live = await h.store.turns.live_turn(TENANT, sid)
        assert live is not None and live.phase is TurnPhase.ACCUMULATING
        until = await cool_down(h, sid)

        assert await h.store.turns.live_turn(TENANT, sid) is None
        await h.advance(until - 1 - h.clock.now_ms())
        assert h.replies("ana") == []
        await h.advance(WATCH.interval_ms + 1)
        await h.run_until_idle()

        assert h.replies("ana") == ["echo: spam spam"]
        turns = await h.store.turns.list_turns(TENANT, sid)
        assert [t.phase for t in turns] == [TurnPhase.SUPERSEDED, TurnPhase.COMMITTED]


async def test_a_cooldown_extended_before_its_release_commits_opens_nothing(
    tmp_path: Path,
) -> None:
    """The release's unit ends the cool-down and checks the mode: if the firewall extended
    the cool-down meanwhile, the whole unit is refused and no turn opens."""
    async with Harness(tmp_path, HarnessOptions(mode_watch=None)) as h:  # nobody else acts
        accepted = await h.send("ana", "Hi")
        await h.run_until_idle()
        sid = accepted.session_id
        until = await cool_down(h, sid, ms=60_000)
        await h.send("ana", "held")
        h.clock.advance_to(until)
        extend = StartCooldown(TENANT, sid, until + 60_000, "flood", "again", until, "tr")
        await h.store.uow.commit(TENANT, [extend])  # the firewall, first

        lease = await h.store.lease.acquire(TENANT, sid, "test", 60_000)
        assert lease is not None
        session = await session_of(h, sid)
        now = h.clock.now_ms()
        group = TurnGroup(TENANT, new_id(), sid, GroupStatus.OPEN, 0, 0, now)
        turn = turn_progress_units.new_accumulating_turn(
            session_id=sid,
            tenant=TENANT,
            turn_id=new_id(),
            group_id=group.group_id,
            trace_id="tr",
            from_seq=session.consumed_seq,
            last_seq=session.last_seq,
            fence=lease.fence,
            at_ms=now,
        )
        _, ops = mode_turn_units.open_held(
            turn, group, session.last_seq, EndCooldown(TENANT, sid, now), Versions("1", "file")
        )
        with pytest.raises(Conflict) as refused:
            await h.store.uow.commit(TENANT, ops)
        assert refused.value.reason == "mode"
        assert await h.store.turns.live_turn(TENANT, sid) is None
        after = await session_of(h, sid)
        assert after.mode is SessionMode.COOLDOWN and after.mode_until_ms == until + 60_000
