"""Settling a pending confirmation before the pipeline runs (DESIGN §8): when the turn
holds exactly one unambiguous answer, or the confirmation expired. The confirmed action
runs under the key fixed when it was requested; a timeout never runs it."""

from typing import Any

from acf.domain.confirmation_answers import Resolution, resolve
from acf.domain.events import EventKind, FabricEvent
from acf.ports.clock import Clock
from acf.ports.event_store import AppendEvent, EventQuery
from acf.ports.lease import CheckFence
from acf.ports.session_store import PatchState
from acf.ports.store import Store
from acf.service.running_turn import RunningTurn
from acf.service.turn_context import RunningTurnContext


async def settle_confirmation(
    run: RunningTurn, ctx: RunningTurnContext, fence: int, state_version: int, clock: Clock
) -> dict[str, Any] | None:
    """How the pending confirmation was settled (``{"answer", "outcome"}``), or None when
    there is none or this turn does not settle it."""
    pending = ctx.pending_confirmation
    if pending is None:
        return None
    now = clock.now_ms()
    answers = [(m.text, m.button.button_id if m.button else None) for m in ctx.messages]
    answer = resolve(pending.yes_id, pending.no_id, pending.expires_at_ms, answers, now)
    if answer is Resolution.NONE:
        return None
    outcome = None
    if answer is Resolution.YES:
        result = await ctx.tools.call_confirmed(pending.tool, pending.args, pending.idempotency_key)
        outcome = result.outcome.value
    kind = (
        EventKind.CONFIRMATION_EXPIRED
        if answer is Resolution.EXPIRED
        else EventKind.CONFIRMATION_RESOLVED
    )
    settled = {"answer": answer.value, "outcome": outcome}
    data = {"confirmation_id": pending.confirmation_id, "tool": pending.tool, **settled}
    now = clock.now_ms()
    t = run.turn
    await run.commit(
        [
            CheckFence(t.session_id, fence, now),
            PatchState(t.session_id, state_version, {"meta": {"confirmation": None}}, now),
            AppendEvent(FabricEvent(kind, now, run.correlation, data)),
        ]
    )
    return settled


_SETTLED = (EventKind.CONFIRMATION_RESOLVED, EventKind.CONFIRMATION_EXPIRED)


async def earlier_settlement(store: Store, run: RunningTurn) -> dict[str, Any] | None:
    """How an earlier run of this turn group settled a confirmation (the settlement is
    committed before the pipeline runs, so a crash or a supersede after it must not lose
    it), or None."""
    t = run.turn
    # A lookup, not a cursor: the settlement committed before this run started must be seen
    # even while an unrelated transaction on the server holds the commit-order horizon back.
    query = EventQuery(
        session_id=t.session_id, kinds=_SETTLED, limit=100_000, in_commit_order=False
    )
    events = [
        e for e in await store.events.query(t.tenant, query) if e.correlation.group_id == t.group_id
    ]
    if not events:
        return None
    data = events[-1].data
    return {"answer": data.get("answer"), "outcome": data.get("outcome")}
