"""Tool calls a turn left unfinished (still ``started`` in the ledger) settled as the turn
ends without learning their outcome: it failed, stood down or was stopped (pure)."""

from collections.abc import Sequence

from acf.domain.events import EventKind
from acf.domain.tools import LedgerStatus, SideEffectPolicy
from acf.domain.turns import Turn
from acf.ports.ledger import FinishExecution, LedgerEntry
from acf.service.turn_progress_units import Ops, Versions, event_op


def settle_unfinished(
    turn: Turn,
    unfinished: Sequence[LedgerEntry],
    at_ms: int,
    versions: Versions,
    reason: str = "turn_failed",
) -> Ops:
    """A call with a side effect that may have happened is ``in_doubt`` (a person checks);
    a PURE or IDEMPOTENT one is ``failed``: running it again is safe, so nobody needs to."""
    ops: Ops = []
    for entry in unfinished:
        doubtful = entry.policy in (SideEffectPolicy.IRREVERSIBLE, SideEffectPolicy.COMPENSATABLE)
        status = LedgerStatus.IN_DOUBT if doubtful else LedgerStatus.FAILED
        kind = EventKind.TOOL_IN_DOUBT if doubtful else EventKind.TOOL_EXECUTION_FAILED
        ended = {"turn_failed": "failed", "turn_stood_down": "stood down"}.get(reason, "stopped")
        error = f"the turn {ended} before this call's outcome was recorded"
        ops.append(FinishExecution(entry.execution_id, status, at_ms, error=error))
        ops.append(
            event_op(
                kind,
                turn,
                versions,
                at_ms,
                tool=entry.tool,
                execution_id=entry.execution_id,
                policy=entry.policy.value,
                reason=reason,
            )
        )
    return ops
