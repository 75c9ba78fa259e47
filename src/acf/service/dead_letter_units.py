"""The writes that record a dead letter and finish a replay, built as values (pure: no
I/O, table-testable), committed inside the turn's own unit (DESIGN §16).

A dead letter never holds a secret: its error and request pass through the log redaction
(``acf.observability.redaction``: secret-named fields masked whole at any depth, registered
secret values and credentials known by their shape masked inside every string), and the
error is cut to ``MAX_ERROR_CHARS``.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from acf.domain.events import EventKind
from acf.domain.ids import AgentId
from acf.domain.messages import InboundMessage
from acf.domain.turns import Turn
from acf.observability.redaction import REGISTRY, cut, redact_text, redact_value
from acf.ports.dead_letters import DeadLetter, FinishReplay, RecordDeadLetter
from acf.service.turn_progress_units import Ops, Versions, event_op

MAX_ERROR_CHARS = 1000


def safe_error(error: str) -> str:
    """``error`` fit to show a person: secrets masked, at most ``MAX_ERROR_CHARS``."""
    return cut(redact_text(error, REGISTRY.pattern()), MAX_ERROR_CHARS)


def safe_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """``request`` as JSON with every secret masked (``redact_value``)."""
    redacted = redact_value(request, REGISTRY.pattern())
    return dict(redacted) if isinstance(redacted, Mapping) else {"request": redacted}


def failed_turn_request(
    messages: Sequence[InboundMessage], replay: DeadLetter | None
) -> dict[str, Any]:
    """What a turn that ended FAILED was asked: its messages' texts (a button's title or
    id when it had no text). A REPLAY turn has no messages: it was asked what its dead
    letter holds, and says which letter it replayed."""
    if replay is not None and not messages:
        return {**dict(replay.request), "replay_of": replay.dead_letter_id}
    texts = [
        m.text or ("" if m.button is None else m.button.title or m.button.button_id)
        for m in messages
    ]
    return {"messages": texts}


def record(
    turn: Turn,
    versions: Versions,
    *,
    dead_letter_id: str,
    agent: AgentId,
    pipeline: str,
    error: str,
    attempts: int,
    request: Mapping[str, Any],
    at_ms: int,
) -> Ops:
    """Store the dead letter of ``turn`` and its ``dead_letter.recorded`` event."""
    letter = DeadLetter(
        tenant=turn.tenant,
        dead_letter_id=dead_letter_id,
        session_id=turn.session_id,
        agent=agent,
        turn_id=turn.turn_id,
        group_id=turn.group_id,
        trace_id=turn.trace_id,
        pipeline=pipeline,
        error=safe_error(error),
        attempts=attempts,
        created_at_ms=at_ms,
        request=safe_request(request),
    )
    return [
        RecordDeadLetter(letter),
        event_op(
            EventKind.DEAD_LETTER_RECORDED,
            turn,
            versions,
            at_ms,
            dead_letter_id=dead_letter_id,
            pipeline=pipeline,
            attempts=attempts,
            error=letter.error,
        ),
    ]


def finish_replay(turn: Turn, versions: Versions, letter: DeadLetter, at_ms: int) -> Ops:
    """The REPLAY ``turn`` ran ``letter``: recorded with the turn's end, so it runs once."""
    return [
        FinishReplay(letter.dead_letter_id, turn.turn_id, at_ms),
        event_op(
            EventKind.DEAD_LETTER_REPLAYED,
            turn,
            versions,
            at_ms,
            dead_letter_id=letter.dead_letter_id,
            replayed_turn_id=letter.turn_id,
        ),
    ]
