"""``ctx.agent_sessions``: the conversation's agent-service sessions as a running turn
sees them (DESIGN §16, seed 004 Story 2).

Reads are scoped to the turn's tenant and session (``latest`` to its agent too). A write
commits at once in its own unit, guarded by the turn's fence like ``ctx.step`` and
``ctx.emit``: a holder whose lease expired or was taken over saves nothing (``LeaseLost``).
A row of another tenant or conversation is refused before any write.
"""

from collections.abc import Mapping
from typing import Any

from acf.domain.agent_sessions import AgentSessionRow
from acf.domain.errors import InvalidValue
from acf.ports.agent_sessions import SaveAgentSession
from acf.service import turn_progress_units
from acf.service.running_turn import RunningTurn


class TurnAgentSessions:
    """Implements ``acf.ports.pipeline.AgentSessionAccess`` for one running turn."""

    def __init__(self, run: RunningTurn) -> None:
        self._run = run

    async def open(self) -> AgentSessionRow | None:
        t = self._run.turn
        return await self._run.store.agent_sessions.open_for(t.tenant, t.session_id)

    async def latest(self) -> AgentSessionRow | None:
        t = self._run.turn
        return await self._run.store.agent_sessions.latest_for(
            t.tenant, t.session_id, self._run.key.agent
        )

    async def save(self, row: AgentSessionRow, event: str | None = None, **data: Any) -> None:
        f = self._run
        t = f.turn
        if (row.tenant, row.session_id) != (t.tenant, t.session_id):
            raise InvalidValue(
                f"agent session row {row.row_id} belongs to another conversation than turn "
                f"{t.turn_id}'s"
            )
        now = f.clock.now_ms()
        ops = _guarded(f, event, data, now)
        await f.commit([ops[0], SaveAgentSession(row), *ops[1:]])


def _guarded(
    run: RunningTurn, event: str | None, data: Mapping[str, Any], at_ms: int
) -> turn_progress_units.Ops:
    """The fence guard, and the progress event when one is named (in that order)."""
    t, fence = run.turn, run.keeper.fence
    if event is None:
        return [turn_progress_units.guard_op(t, fence, at_ms)]
    body = {"agent": run.key.agent, **data}  # as ctx.emit: metrics count per agent
    return turn_progress_units.progress(t, fence, event, body, at_ms, run.versions)
