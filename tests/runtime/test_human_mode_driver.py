"""The driver in human mode (issue 22), on the embedded runtime and the virtual clock: the
agent is silent while the customer's messages keep arriving (stored, shown, unconsumed);
a window open when the handoff lands stands down without a reply; a crash in human mode
starts no agent turn, and a turn left running by it stands down; typing wakes nobody; the
handoff's notice goes out through the relay. The handoff is the store's own op
(``EnterHuman``), as the operator desk and the pipeline commit it."""

from pathlib import Path

from acf.adapters.sql.database import SqlConnection
from acf.domain.events import EventKind
from acf.domain.modes import SessionMode
from acf.domain.policy import DEFAULT_IDLE_TIMEOUT_S
from acf.domain.turns import GroupStatus, TurnPhase
from acf.ports.checkpoints import Phase
from acf.ports.event_store import EventQuery
from acf.ports.handoffs import EnterHuman, HandoffSource
from acf.ports.session_store import SessionRecord, SessionStatus
from acf.testing.harness import TENANT, Harness

NOTICE = "A person will take it from here."


async def session_of(h: Harness, customer: str) -> SessionRecord:
    session = await h.store.sessions.find_open(TENANT, h.key(customer))
    assert session is not None
    return session


async def hand_off(h: Harness, customer: str, notice: str | None = NOTICE) -> None:
    """Hand the session off as the desk does: the op, then the session's wake-up."""
    session = await session_of(h, customer)
    op = EnterHuman(
        TENANT,
        session.session_id,
        "asked for a person",
        HandoffSource.OPERATOR,
        h.clock.now_ms(),
        "trace-handoff",
        notice=notice,
    )
    await h.store.uow.commit(TENANT, [op])
    await h.runtime.notify(TENANT, session.session_id)
    await h.settle()


async def events(h: Harness, session_id: str, kind: EventKind) -> list[dict[str, object]]:
    found = await h.store.events.query(TENANT, EventQuery(session_id=session_id, kinds=(kind,)))
    return [dict(e.data) for e in found]


async def test_the_agent_is_silent_in_human_mode_while_messages_keep_arriving(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        await h.send("ana", "Where is my parcel?")
        await h.run_until_idle()
        assert h.replies("ana") == ["echo: Where is my parcel?"]

        await hand_off(h, "ana")
        for text in ("Hello?", "Anyone there?", "I want a person."):
            await h.send("ana", text)
            await h.advance(2_000)
        await h.advance(600_000)  # far past any window

        # Only the handoff's notice went out: no agent turn ran.
        assert h.replies("ana") == ["echo: Where is my parcel?", NOTICE]
        session = await session_of(h, "ana")
        assert session.mode is SessionMode.HUMAN
        assert (session.consumed_seq, session.last_seq) == (1, 4)  # stored, kept
        messages = await h.store.messages.read_range(TENANT, session.session_id, 1, 4)
        assert [m.text for m in messages] == ["Hello?", "Anyone there?", "I want a person."]
        turns = await h.store.turns.list_turns(TENANT, session.session_id)
        assert [t.phase for t in turns] == [TurnPhase.COMMITTED]
        assert await h.store.turns.live_turn(TENANT, session.session_id) is None
        assert h.idle


async def test_a_window_open_when_the_handoff_lands_stands_down_without_a_reply(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        accepted = await h.send("ana", "I need help with")
        sid = accepted.session_id
        live = await h.store.turns.live_turn(TENANT, sid)
        assert live is not None and live.phase is TurnPhase.ACCUMULATING  # the window waits

        await hand_off(h, "ana", notice=None)
        await h.advance(600_000)

        assert h.replies("ana") == []
        assert await h.store.turns.live_turn(TENANT, sid) is None
        turns = await h.store.turns.list_turns(TENANT, sid)
        assert [t.phase for t in turns] == [TurnPhase.SUPERSEDED]
        group = await h.store.turns.get_group(TENANT, turns[0].group_id)
        assert group is not None and group.status is GroupStatus.HANDED_OFF
        superseded = await events(h, sid, EventKind.TURN_SUPERSEDED)
        assert [(e["reason"], e["mode"]) for e in superseded] == [("mode", "human")]
        assert await h.store.timers.get(TENANT, sid, "window_close") is None  # no timer
        session = await session_of(h, "ana")
        assert (session.consumed_seq, session.last_seq) == (0, 1)  # kept for the operator


async def test_a_crash_in_human_mode_starts_no_agent_turn(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        await h.send("ana", "Hi")
        await h.run_until_idle()
        await hand_off(h, "ana", notice=None)
        await h.send("ana", "Still there?")
        await h.send("ana", "Hello?")

        await h.crash()  # the new runtime recovers from the store
        await h.send("ana", "After the crash")
        await h.advance(600_000)

        assert h.replies("ana") == ["echo: Hi"]
        session = await session_of(h, "ana")
        assert (session.consumed_seq, session.last_seq) == (1, 4)
        turns = await h.store.turns.list_turns(TENANT, session.session_id)
        assert len(turns) == 1
        # The recovery scan does not even list it: nothing for a driver to do.
        work = await h.store.recovery.sessions_with_work(now_ms=h.clock.now_ms())
        assert [w.session_id for w in work] == []


async def test_a_turn_left_running_by_a_crash_in_human_mode_stands_down(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:

        async def handed_off_meanwhile() -> None:
            session = await session_of(h, "ana")
            now = h.clock.now_ms()
            op = EnterHuman(
                TENANT, session.session_id, "asked", HandoffSource.OPERATOR, now, "trace-h"
            )
            await h.store.uow.commit(TENANT, [op])

        # The turn starts running; the handoff commits; the process dies before the run.
        h.inject_at(Phase.RUN_STARTED, handed_off_meanwhile)
        h.crash_at(Phase.RUN_STARTED)
        accepted = await h.send("ana", "Refund my order")
        await h.advance(600_000)

        assert h.crashes == 1
        assert h.replies("ana") == []  # the recovered turn never answered
        turns = await h.store.turns.list_turns(TENANT, accepted.session_id)
        assert [t.phase for t in turns] == [TurnPhase.SUPERSEDED]
        superseded = await events(h, accepted.session_id, EventKind.TURN_SUPERSEDED)
        assert [(e["reason"], e["mode"]) for e in superseded] == [("mode", "human")]
        session = await session_of(h, "ana")
        assert (session.consumed_seq, session.last_seq) == (0, 1)


async def fence(h: Harness, session_id: str) -> int:
    """The session lease's fence: every driver run takes the lease anew (a new fence)."""

    def read(conn: SqlConnection) -> int:
        row = conn.execute(
            "SELECT fence FROM session_leases WHERE tenant = ? AND session_id = ?",
            (TENANT, session_id),
        ).fetchone()
        return 0 if row is None else int(row[0])

    return await h.store.db.read(TENANT, read)


async def test_typing_in_human_mode_wakes_nobody(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        await h.send("ana", "Hi")
        await h.run_until_idle()
        await hand_off(h, "ana", notice=None)
        accepted = await h.send("ana", "One more thing")  # unconsumed: typing would wake
        await h.settle()
        before = await fence(h, accepted.session_id)
        assert before > 0

        await h.typing("ana", True)

        assert await fence(h, accepted.session_id) == before  # no driver took the lease
        typing = await events(h, accepted.session_id, EventKind.TYPING_STARTED)
        assert len(typing) == 1  # still recorded
        assert h.runtime.parts.typing == {}


async def test_a_session_in_human_mode_never_closes_for_idleness(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        accepted = await h.send("ana", "Hi")
        await h.run_until_idle()
        sid = accepted.session_id
        await hand_off(h, "ana", notice=None)
        await h.advance(DEFAULT_IDLE_TIMEOUT_S * 1000 + 10 * 60_000)  # sweeps ran meanwhile

        session = await session_of(h, "ana")
        assert session.status is SessionStatus.OPEN
        # Asked directly (past the scan, which lists agent-mode sessions only), the close
        # still refuses it under the lease.
        closer = h.runtime.idle_closer
        assert closer is not None
        assert await closer.close_if_idle(TENANT, sid) is None
        assert (await session_of(h, "ana")).status is SessionStatus.OPEN
