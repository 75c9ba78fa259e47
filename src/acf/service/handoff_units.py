"""The operator's reply as a unit of work (pure, table-testable): a HUMAN turn.

An operator answers a session in human mode under the session lease (``OperatorDesk``
takes it). The reply is committed as a turn of kind HUMAN, COMMITTED as it is created, over
the messages it answers, ``(consumed_seq, to_seq]``, so the first agent turn after a resume
answers only what came after it (DESIGN §3 invariant 1 holds for operators' replies too).
One outbox row at position 0: it goes out as an agent's reply goes (relay, channel
formatting, fallback ladder, delivery statuses); no window, supersede or cut applies to it.
A live agent turn left under the lease (a driver cut off before it stood down) ends in the
same unit, as its driver would end it (``mode_turn_units.leave_agent_mode``: stood down,
or stopped past the irreversible gate, consuming its range), its unfinished calls settled.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from acf.domain.errors import InvalidValue
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import GroupId, TraceId, TurnId
from acf.domain.modes import SessionMode, TurnKind
from acf.domain.records import TurnRecord
from acf.domain.replies import Button, ReplySegment
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.event_store import AppendEvent
from acf.ports.handoffs import CheckClaim, MarkOperatorReply, Operator
from acf.ports.lease import CheckFence
from acf.ports.ledger import LedgerEntry
from acf.ports.outbox import EnqueueReply
from acf.ports.session_store import ConsumeRange, SessionRecord
from acf.ports.turn_store import CreateTurn, OpenGroup, SaveTurnRecord
from acf.service.mode_turn_units import leave_agent_mode
from acf.service.turn_progress_units import Ops, Versions

OPERATOR_AUTHOR = "operator"
MAX_TEXT = 4_096
"""The longest reply an operator may write (a channel cuts it in parts as it cuts an
agent's)."""
MAX_BUTTONS = 10
MAX_BUTTON_TITLE = 80
BUTTON_ID_BYTES = 64
"""A button's id is its title when it fits every channel's limit (Telegram's callback data),
so a tap reads as what the customer chose; else ``option-<n>``."""


def reply_payload(text: str, buttons: Sequence[str] | None, by: Operator) -> dict[str, Any]:
    """The outbox payload of an operator's reply: an agent reply's shape (so channels format
    and degrade its buttons alike) with ``author`` and ``operator``. ``InvalidValue`` names
    what is wrong."""
    if not text.strip():
        raise InvalidValue("text: an operator's reply needs text")
    if len(text) > MAX_TEXT:
        raise InvalidValue(f"text: at most {MAX_TEXT} characters")
    titles = [b.strip() for b in buttons or ()]
    if len(titles) > MAX_BUTTONS:
        raise InvalidValue(f"buttons: at most {MAX_BUTTONS}")
    for n, title in enumerate(titles, start=1):
        if not title:
            raise InvalidValue(f"buttons[{n - 1}]: a button needs a title")
        if len(title) > MAX_BUTTON_TITLE:
            raise InvalidValue(f"buttons[{n - 1}]: at most {MAX_BUTTON_TITLE} characters")
    if len(set(titles)) != len(titles):
        raise InvalidValue("buttons: two buttons have the same title")
    segment = ReplySegment(
        text,
        buttons=tuple(Button(_button_id(title, n), title) for n, title in enumerate(titles, 1)),
    )
    payload = segment.to_payload()
    if not titles:
        del payload["buttons"]
    del payload["media"], payload["delay_ms"]
    return {**payload, "author": OPERATOR_AUTHOR, "operator": by.as_payload()}


def _button_id(title: str, n: int) -> str:
    return title if len(title.encode()) <= BUTTON_ID_BYTES else f"option-{n}"


def answered_through(session: SessionRecord, answers_through_seq: int | None) -> int:
    """The last message the reply answers: ``answers_through_seq`` (the operator read up to
    there), never past the newest message nor before what is already answered; without
    it, the newest. ``InvalidValue`` for a negative one."""
    if answers_through_seq is None:
        return session.last_seq
    if answers_through_seq < 0:
        raise InvalidValue("answers_through_seq: must not be negative")
    return max(session.consumed_seq, min(answers_through_seq, session.last_seq))


@dataclass(frozen=True, slots=True)
class HumanReply:
    """The unit, its turn, and the op whose result is the reply's outbox id."""

    ops: Ops
    turn: Turn
    enqueue: EnqueueReply


@dataclass(frozen=True, slots=True)
class LiveTurn:
    """An agent turn still live under the lease the operator took, with its versions (for
    its record and events) and its group's calls still ``started`` (settled with it)."""

    turn: Turn
    versions: Versions
    unfinished: Sequence[LedgerEntry] = ()

    @property
    def consumes(self) -> bool:
        """Whether ending it consumes its range: it ran past the irreversible gate
        (``mode_turn_units.stop_past_gate``)."""
        return self.turn.phase is TurnPhase.RUNNING and self.turn.irreversible_started


def human_reply(
    *,
    session: SessionRecord,
    fence: int,
    by: Operator,
    handoff_id: str,
    payload: dict[str, Any],
    to_seq: int,
    turn_id: TurnId,
    group_id: GroupId,
    trace_id: TraceId,
    at_ms: int,
    claim_until_ms: int,
    live: LiveTurn | None = None,
) -> HumanReply:
    """The operator's reply to ``session`` (read under the lease of fence ``fence``) through
    message ``to_seq``: guarded by the fence, ``by``'s claim and the session's human mode
    (``ConsumeRange(mode=HUMAN)``); ``by``'s claim extended to ``claim_until_ms``. A live
    agent turn (``live``) ends first (``mode_turn_units.leave_agent_mode``); one past the
    irreversible gate consumes its range, so the reply answers from its end on."""
    tenant, session_id = session.tenant, session.session_id
    from_seq = session.consumed_seq
    if live is not None and live.consumes:
        from_seq = max(from_seq, live.turn.to_seq)
        to_seq = max(to_seq, from_seq)
    turn = Turn(
        tenant=tenant,
        turn_id=turn_id,
        session_id=session_id,
        group_id=group_id,
        phase=TurnPhase.COMMITTED,
        from_seq=from_seq,
        to_seq=to_seq,
        attempt=1,
        fence=fence,
        irreversible_started=False,
        trace_id=trace_id,
        created_at_ms=at_ms,
        updated_at_ms=at_ms,
        kind=TurnKind.HUMAN,
    )
    group = TurnGroup(tenant, group_id, session_id, GroupStatus.COMMITTED, 0, 1, at_ms)
    # No configuration version: an operator's turn is in no canary arm.
    correlation = Correlation(tenant, trace_id, session_id, turn_id, group_id)
    enqueue = EnqueueReply(session_id, turn_id, 0, payload, at_ms)
    record = TurnRecord(
        correlation=correlation,
        outcome=TurnPhase.COMMITTED,
        from_seq=turn.from_seq,
        to_seq=to_seq,
        attempt=1,
        started_at_ms=at_ms,
        ended_at_ms=at_ms,
        replies=(str(payload["text"]),),
        state_version_before=session.state_version,
        state_version_after=session.state_version,
        details={
            "kind": TurnKind.HUMAN.value,
            "operator": by.as_payload(),
            "handoff_id": handoff_id,
        },
    )

    def event(event_kind: EventKind, **data: Any) -> AppendEvent:
        return AppendEvent(FabricEvent(event_kind, at_ms, correlation, data))

    ops: Ops = [
        CheckFence(session_id, fence, at_ms),
        CheckClaim(tenant, session_id, by, at_ms),
    ]
    if live is not None:
        ops += leave_agent_mode(
            live.turn, fence, live.versions, at_ms, SessionMode.HUMAN, unfinished=live.unfinished
        )
    ops += [
        OpenGroup(group),
        CreateTurn(turn),
        enqueue,
        SaveTurnRecord(record),
        ConsumeRange(session_id, turn.from_seq, to_seq, False, at_ms, mode=SessionMode.HUMAN),
        event(EventKind.RESPONSE_QUEUED, position=0, text=payload["text"], author=OPERATOR_AUTHOR),
        # After the row: it writes ``operator.replied`` with the row's id.
        MarkOperatorReply(
            tenant, handoff_id, at_ms, claim_until_ms, turn_id=turn_id, by=by, trace_id=trace_id
        ),
        event(
            EventKind.TURN_COMMITTED,
            kind=TurnKind.HUMAN.value,
            from_seq=turn.from_seq,
            to_seq=to_seq,
            attempt=1,
            replies=1,
            by=by.as_payload(),
        ),
    ]
    return HumanReply(ops, turn, enqueue)
