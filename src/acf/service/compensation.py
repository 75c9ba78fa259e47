"""Undoing what an abandoned turn group did (DESIGN §8): its succeeded COMPENSATABLE
actions are compensated before the FAILED commit, so a crash here compensates again on
recovery (each compensation call is deduplicated by its own key)."""

from collections.abc import Awaitable, Callable

import structlog

from acf.domain.tools import LedgerStatus, SideEffectPolicy
from acf.ports.ledger import LedgerQuery
from acf.ports.store import Store
from acf.service.running_turn import LeaseLost, RunningTurn
from acf.service.turn_context import RunningTurnContext

log = structlog.get_logger("acf.runtime")


async def compensate_group(
    store: Store,
    frame: RunningTurn,
    context: Callable[[], Awaitable[tuple[RunningTurnContext, int, object]]],
) -> None:
    """Compensate the group's succeeded COMPENSATABLE executions through the gateway of a
    context built by ``context`` (only when there is something to undo)."""
    t = frame.turn
    entries = await store.ledger.query(t.tenant, LedgerQuery(group_id=t.group_id))
    undoable = [
        e
        for e in entries
        if e.policy is SideEffectPolicy.COMPENSATABLE and e.status is LedgerStatus.SUCCEEDED
    ]
    if not undoable:
        return
    ctx, _, _ = await context()
    for entry in undoable:
        try:
            await ctx.tools.compensate(entry.execution_id)
        except LeaseLost:
            raise
        except Exception as exc:  # recorded in the ledger; a person follows up anyway
            log.error(
                "compensation.failed",
                **frame.correlation.fields(),
                execution_id=entry.execution_id,
                error=repr(exc),
            )
