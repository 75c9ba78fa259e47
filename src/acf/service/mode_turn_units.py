"""The units that open a turn outside agent mode (pure: no I/O, table-testable), beside
``turn_progress_units``:

- ``open_held``: a cool-down ends and ONE agent turn over every message it held starts, in
  one unit (DESIGN §15: the held messages are answered as one burst);
- ``drop``: a blocked customer's messages consumed without an answer by a DROP turn,
  audited (``abuse.messages_dropped``);

and the unit that ends an agent turn a driver (or an operator's reply) finds live while
the session is not in agent mode (``leave_agent_mode``): one that did not pass the
irreversible gate stands down (``turn_ending_units.stand_down``: SUPERSEDED, its range
left for whoever answers now); one that passed it is stopped silently
(``stop_past_gate``).

Each starts with ``CheckFence``, like every unit of a session's driver.
"""

from collections.abc import Sequence
from dataclasses import replace

from acf.domain.abuse import ABUSE_CATEGORY
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.modes import SessionMode, TurnKind
from acf.domain.records import TurnRecord
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.event_store import AppendEvent
from acf.ports.lease import CheckFence
from acf.ports.ledger import LedgerEntry
from acf.ports.session_modes import CheckMode, EndCooldown
from acf.ports.session_store import ConsumeRange
from acf.ports.turn_store import CreateTurn, OpenGroup, SaveTurnRecord, UpdateGroup
from acf.service.turn_ending_units import (
    STAND_DOWN_REASON,
    flag_for_person,
    settle_unfinished,
    stand_down,
    turn_record,
)
from acf.service.turn_progress_units import (
    Ops,
    Versions,
    closed_and_started,
    event_op,
    guard_op,
    move_op,
)

HELD_REASON = "cooldown_ended"
"""The window reason of the turn that answers the messages a cool-down held."""


def held_details(held_by: SessionMode) -> dict[str, str]:
    """The TurnRecord details of the turn that answers the messages ``held_by`` held."""
    return {"category": ABUSE_CATEGORY, "held_by": held_by.value}


def open_held(
    turn: Turn, group: TurnGroup, to_seq: int, end: EndCooldown, versions: Versions
) -> tuple[Turn, Ops]:
    """The cool-down ends (``end``) and ONE agent turn over every message it held
    (``(from_seq, to_seq]``) starts RUNNING, its first attempt recorded, in one unit: the
    held messages waited long enough, so no window gathers more. The window's reason
    (``HELD_REASON``) and ``held_by`` say which turn answers them. If the cool-down did not
    end (extended meanwhile), ``CheckMode`` refuses the unit (``Conflict("mode")``):
    nothing is opened."""
    at = turn.created_at_ms
    running = replace(turn, phase=TurnPhase.RUNNING, to_seq=to_seq, attempt=1)
    held_by = SessionMode.COOLDOWN.value
    return running, [
        guard_op(turn, turn.fence, at),
        end,
        CheckMode(turn.session_id, SessionMode.AGENT),
        OpenGroup(replace(group, attempts=1)),
        CreateTurn(running),
        event_op(
            EventKind.WINDOW_OPENED,
            running,
            versions,
            at,
            from_seq=turn.from_seq,
            close_at_ms=at,
            reason=HELD_REASON,
            held_by=held_by,
        ),
        *closed_and_started(running, turn.from_seq, HELD_REASON, at, versions),
    ]


def drop(turn: Turn, fence: int, block_id: str | None, reason: str | None) -> Ops:
    """A blocked customer's DROP turn: ``turn`` (kind DROP, COMMITTED, in a group of its
    own) consumes ``(from_seq, to_seq]`` without an answer, guarded by the blocked mode
    (``ConsumeRange(mode=BLOCKED)``: a block lifted meanwhile drops nothing). Its record
    has category ABUSE_SUSPECTED and no configuration version (no canary arm counts it);
    ``abuse.messages_dropped`` names the range and the block. The messages stay stored and
    readable: invariant 1's rule for blocked customers (their range is a committed turn's)."""
    at = turn.created_at_ms
    dropped = replace(turn, kind=TurnKind.DROP, phase=TurnPhase.COMMITTED, attempt=0)
    group = TurnGroup(turn.tenant, turn.group_id, turn.session_id, GroupStatus.COMMITTED, 0, 0, at)
    where = Correlation(
        tenant=turn.tenant,
        trace_id=turn.trace_id,
        session_id=turn.session_id,
        turn_id=turn.turn_id,
        group_id=turn.group_id,
    )
    span = {"from_seq": dropped.from_seq, "to_seq": dropped.to_seq}
    record = TurnRecord(
        correlation=where,
        outcome=TurnPhase.COMMITTED,
        from_seq=dropped.from_seq,
        to_seq=dropped.to_seq,
        attempt=0,
        started_at_ms=at,
        ended_at_ms=at,
        details={
            "category": ABUSE_CATEGORY,
            "kind": TurnKind.DROP.value,
            "mode": SessionMode.BLOCKED.value,
            "block_id": block_id,
            "reason": reason,
        },
    )
    return [
        CheckFence(turn.session_id, fence, at),
        OpenGroup(group),
        CreateTurn(dropped),
        SaveTurnRecord(record),
        ConsumeRange(
            turn.session_id,
            dropped.from_seq,
            dropped.to_seq,
            False,
            at,
            mode=SessionMode.BLOCKED,
        ),
        AppendEvent(
            FabricEvent(
                EventKind.ABUSE_MESSAGES_DROPPED,
                at,
                where,
                {**span, "block_id": block_id, "reason": reason},
            )
        ),
        AppendEvent(
            FabricEvent(
                EventKind.TURN_COMMITTED,
                at,
                where,
                {**span, "kind": TurnKind.DROP.value, "attempt": 0, "replies": 0},
            )
        ),
    ]


def leave_agent_mode(
    turn: Turn,
    fence: int,
    versions: Versions,
    at_ms: int,
    mode: SessionMode,
    *,
    unfinished: Sequence[LedgerEntry] = (),
) -> Ops:
    """End ``turn``, found live (by a driver that adopted it, or under an operator's lease)
    while its session is in ``mode``, not agent mode: ``stop_past_gate`` when it is RUNNING
    past the irreversible gate, else ``stand_down``. ``unfinished``: its group's calls
    still ``started``."""
    if turn.phase is TurnPhase.RUNNING and turn.irreversible_started:
        return stop_past_gate(turn, fence, versions, at_ms, mode, unfinished=unfinished)
    return stand_down(turn, fence, versions, at_ms, mode, unfinished=unfinished)


def stop_past_gate(
    turn: Turn,
    fence: int,
    versions: Versions,
    at_ms: int,
    mode: SessionMode,
    *,
    unfinished: Sequence[LedgerEntry] = (),
) -> Ops:
    """Stop a RUNNING turn past the irreversible gate whose runner is gone (a crash, a
    take-over), found while its session is in ``mode``: the silent failure of
    ``TurnOutcomes.fail`` for a turn past the gate, without a pipeline to ask.

    It passed the gate, so its range is answered as far as the agent goes: the turn moves
    to FAILED (it did not finish: nothing it would have committed is known, unlike a
    silent commit, which keeps a finished pipeline's effects) and consumes its range in
    any mode (``ConsumeRange(mode=None)``), so that after a resume the agent never answers
    those messages again and its irreversible step never runs twice. Its group's calls
    still ``started`` are settled as a failure settles them (``in_doubt`` when a side
    effect may have happened), the session is flagged for a person, the group is
    HANDED_OFF. Its record says why (``reason`` ``mode``, the mode, ``past_gate``) and that
    no reply went out (``withheld_replies``: none was written); ``turn.failed`` says the
    same. No fallback reply, no compensation (the effects stand), no retry."""
    error = f"the session left agent mode ({mode.value}) after the turn passed the gate"
    return [
        *settle_unfinished(turn, unfinished, at_ms, versions, reason="turn_stopped"),
        guard_op(turn, fence, at_ms),
        move_op(turn, TurnPhase.FAILED, fence, at_ms),
        turn_record(
            turn,
            TurnPhase.FAILED,
            versions,
            turn.created_at_ms,
            at_ms,
            error=error,
            details={
                "reason": STAND_DOWN_REASON,
                "mode": mode.value,
                "past_gate": True,
                "withheld_replies": [],
            },
        ),
        ConsumeRange(turn.session_id, turn.from_seq, turn.to_seq, False, at_ms, mode=None),
        UpdateGroup(turn.group_id, GroupStatus.HANDED_OFF, 0, 0),
        *flag_for_person(
            turn, f"turn stopped past the irreversible gate: {error}", at_ms, versions
        ),
        event_op(
            EventKind.TURN_FAILED,
            turn,
            versions,
            at_ms,
            error=error,
            reason=STAND_DOWN_REASON,
            mode=mode.value,
            attempts=turn.attempt,
            from_seq=turn.from_seq,
            to_seq=turn.to_seq,
        ),
    ]
