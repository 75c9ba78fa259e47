"""The irreversible gate (DESIGN §6, §8): a turn passes it before its first irreversible
action, and from then on it is never cancelled.

Passing it is one fenced unit: ``MarkIrreversibleStarted`` (a port op; the SQL in
``adapters/sql/turns.py`` refuses it with ``Conflict("new_messages")`` while the session
holds messages the turn has not seen, unless the pass is unconditional) and the
``turn.irreversible_started`` event. This module holds the three pieces of the rule:

- the pass, refused for unseen messages: the pipeline gets ``PendingInput``, and the
  refusal is remembered so that an unhandled one supersedes the turn
  (``domain.turn_steps.after_attempt``) rather than failing it;
- the forced pass (the pipeline forces it, the hook chose FORCE_COMPLETE, or the restart
  bound is reached): it passes despite unseen messages, audited as
  ``turn.force_completed``, and the turn then behaves as QUEUE;
- a turn whose gate an earlier attempt passed: through the tool gateway it goes on (the
  ledger knows what ran); called directly it raises ``InDoubt``;
- the session left agent mode (a handoff, a cool-down, a block) before the pass: it is
  refused with ``ModeChanged`` (no irreversible action starts; the turn stands down). A
  pass that came first makes the turn finish, its reply withheld at the commit.
"""

from dataclasses import replace
from typing import Any

from acf.domain.errors import Conflict
from acf.domain.events import EventKind, FabricEvent
from acf.domain.supersede import SupersedeDecision
from acf.ports.event_store import AppendEvent
from acf.ports.lease import CheckFence
from acf.ports.pipeline import InDoubt, PendingInput
from acf.ports.turn_store import MarkIrreversibleStarted
from acf.ports.unit_of_work import WriteOp
from acf.service.running_turn import LeaseLost, ModeChanged, RunningTurn


class IrreversibleGate:
    """The gate of one running turn, across its attempts."""

    def __init__(self, run: RunningTurn) -> None:
        self._run = run
        self.refused = False
        """The gate refused for unseen messages while the turn had never passed it."""
        self._passed_before = False
        self._restart_bound_reached = False

    def begin_attempt(self, restart_bound_reached: bool) -> None:
        """Called as an attempt starts: whether an earlier attempt passed the gate, and
        whether the group's restarts reached the bound (then the gate is forced)."""
        self._passed_before = self._run.turn.irreversible_started
        self._restart_bound_reached = restart_bound_reached

    async def enter(self, force: bool, trust_ledger: bool) -> None:
        """Pass the gate. ``trust_ledger``: called by the tool gateway, which knows from the
        ledger what an earlier attempt ran; called by the pipeline, it cannot know."""
        run = self._run
        turn = run.turn
        now = run.clock.now_ms()
        if self._passed_before and not trust_ledger:
            # An earlier attempt of this turn passed the gate: its action may have run.
            raise InDoubt("an earlier attempt of this turn started an irreversible action")
        why = self._forced_by(force)
        if turn.irreversible_started:
            if await run.has_unseen():
                if why is None:
                    raise PendingInput("the customer sent messages this turn has not seen")
                await run.commit(self._force_complete(now, why))
            return
        # With accumulation OFF, newer messages are other turns': the gate ignores them.
        unconditional = why is not None or run.off
        gate = MarkIrreversibleStarted(turn.turn_id, run.keeper.fence, unconditional, now)
        event = AppendEvent(
            FabricEvent(
                EventKind.TURN_IRREVERSIBLE_STARTED,
                now,
                run.correlation,
                {"forced": why, "to_seq": turn.to_seq, "off": run.off},
            )
        )
        # The fence check first: on PostgreSQL it locks the lease row (FOR SHARE), so the
        # gate and a take-over are serialized, as every other fenced unit is.
        ops: list[WriteOp[Any]] = [CheckFence(turn.session_id, run.keeper.fence, now), gate, event]
        if why is not None and await run.has_unseen():
            ops += self._force_complete(now, why)[1:]  # its fence check is already first
        try:
            await run.commit(ops)
        except Conflict as conflict:
            if conflict.reason == "new_messages":
                self.refused = True
                raise PendingInput("the customer sent messages this turn has not seen") from None
            if conflict.reason == "mode":
                raise ModeChanged("the session left agent mode before this action") from None
            raise LeaseLost(conflict.reason) from conflict
        run.turn = replace(turn, irreversible_started=True)

    def _forced_by(self, force: bool) -> str | None:
        """Why the gate may pass despite newer messages: the pipeline forces it, the hook
        chose FORCE_COMPLETE, or the restart bound is reached (QUEUE: never starve)."""
        if force or self._run.news_decision is SupersedeDecision.FORCE_COMPLETE:
            return "pipeline"
        if self._restart_bound_reached:
            return "restart_bound"
        return None

    def _force_complete(self, now: int, why: str) -> list[WriteOp[Any]]:
        """FORCE_COMPLETE, audited; the turn then behaves as QUEUE."""
        run = self._run
        run.news_decision = SupersedeDecision.FORCE_COMPLETE
        return [
            CheckFence(run.turn.session_id, run.keeper.fence, now),
            AppendEvent(
                FabricEvent(
                    EventKind.TURN_FORCE_COMPLETED,
                    now,
                    run.correlation,
                    {"to_seq": run.turn.to_seq, "reason": why},
                )
            ),
        ]
