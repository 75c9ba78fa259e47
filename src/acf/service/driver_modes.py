"""What a session's driver does when the session is not in agent mode (DESIGN §4, §15).

Under the lease, after the claim, by the session's mode (``acf.domain.modes``), a live
turn first ends (``turn_ending_units.stand_down``: no reply, no restart; see below for one
past the irreversible gate); then:

- human: the messages are kept for the operator; the relay is poked (operator replies and
  notices are outbox rows); the driver goes idle;
- cooldown, running: the messages are kept (held); idle until the mode watch wakes the
  session at the cool-down's end (``mode_watch``);
- cooldown, ended: ``RELEASE``: the driver ends the cool-down and runs ONE agent turn over
  the held messages (``mode_turn_units.open_held``);
- blocked: a DROP turn consumes them without an answer (``mode_turn_units.drop``); a
  block that expired (not yet lifted by the mode watch) is lifted instead, and the driver
  looks again.

A live turn RUNNING past the irreversible gate (its runner is gone: a crash, a take-over)
is not stood down but stopped silently, consuming its range, so the agent never answers
those messages twice (``mode_turn_units.leave_agent_mode``).

A cool-down that ended with nothing held just ends (``EndCooldown``). Accumulation windows,
typing, timers and requested replays are agent mode's: none of them runs here (a replay
waits for the agent). A fence the store refuses
means the lease was lost (``LeaseLost``).
"""

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import structlog

from acf.domain.errors import Conflict
from acf.domain.events import EventKind
from acf.domain.ids import GroupId, SessionId, TenantId, new_id, new_trace_id
from acf.domain.modes import BLOCK_EXPIRY, SessionMode, blocked_by
from acf.domain.tools import LedgerStatus
from acf.domain.turns import GroupStatus, Turn, TurnGroup
from acf.ports.checkpoints import Phase
from acf.ports.event_store import EventQuery
from acf.ports.firewall import LiftBlock
from acf.ports.lease import CheckFence
from acf.ports.ledger import LedgerQuery
from acf.ports.session_modes import EndCooldown
from acf.ports.session_store import SessionRecord
from acf.ports.unit_of_work import WriteOp
from acf.service import mode_turn_units, turn_progress_units
from acf.service.agents import Pinned
from acf.service.lease_keeper import LeaseKeeper
from acf.service.running_turn import LeaseLost
from acf.service.runtime_parts import RuntimeParts
from acf.service.session_repin import SessionRepin, stamp_ops

log = structlog.get_logger("acf.runtime")


class ModeStep(StrEnum):
    IDLE = "idle"
    """Nothing for the agent to do in this mode: the driver goes idle."""
    AGAIN = "again"
    """Something was committed (a stand-down, a DROP turn, a cool-down's end): look again."""
    RELEASE = "release"
    """A cool-down ended with messages held: run them as one agent turn."""


def cooldown_over(session: SessionRecord, now_ms: int) -> bool:
    """Whether the session's cool-down has ended by ``now_ms``."""
    until = session.mode_until_ms
    return session.mode is SessionMode.COOLDOWN and until is not None and until <= now_ms


class OutsideAgent:
    """One session's steps outside agent mode, under the lease its driver holds."""

    def __init__(
        self, parts: RuntimeParts, tenant: TenantId, session_id: SessionId, pin: SessionRepin
    ) -> None:
        self._parts = parts
        self._tenant = tenant
        self._session_id = session_id
        self._pin = pin
        self._held_group: GroupId | None = None
        """The group of the turn answering a cool-down's held messages (and its restarts)."""

    async def step(
        self, session: SessionRecord, live: Turn | None, keeper: LeaseKeeper
    ) -> ModeStep:
        """One step by ``session``'s mode (not agent), as read under the lease."""
        p = self._parts
        if live is not None:
            return await self._stand_down(session, live, keeper)
        now = p.clock.now_ms()
        if cooldown_over(session, now):
            if session.has_unconsumed:
                return ModeStep.RELEASE
            await self._commit([CheckFence(self._session_id, keeper.fence, now), self.end(now)])
            log.info("cooldown.ended", tenant=self._tenant, session_id=self._session_id)
            return ModeStep.AGAIN
        if session.mode is SessionMode.BLOCKED:
            if not session.has_unconsumed:
                return ModeStep.IDLE
            await self._drop(session, keeper)
            return ModeStep.AGAIN
        # Human mode, or a cool-down still running: the messages wait. The operator's
        # replies and the notices are outbox rows: their relay goes on.
        p.poke_relay(self._tenant, self._session_id)
        return ModeStep.IDLE

    async def open_held(
        self, session: SessionRecord, pinned: Pinned, keeper: LeaseKeeper
    ) -> Turn | None:
        """The cool-down ends and ONE agent turn over every message it held starts, in one
        unit (``mode_turn_units.open_held``), RUNNING at once. None when the cool-down did
        not end (the firewall extended it meanwhile): nothing was opened."""
        p = self._parts
        now = p.clock.now_ms()
        group = TurnGroup(self._tenant, new_id(), self._session_id, GroupStatus.OPEN, 0, 0, now)
        turn = turn_progress_units.new_accumulating_turn(
            session_id=self._session_id,
            tenant=self._tenant,
            turn_id=new_id(),
            group_id=group.group_id,
            trace_id=session.pending_trace_id or new_trace_id(),
            from_seq=session.consumed_seq,
            last_seq=session.last_seq,
            fence=keeper.fence,
            at_ms=now,
        )
        running, ops = mode_turn_units.open_held(
            turn, group, session.last_seq, self.end(now), p.versions(pinned.binding)
        )
        try:
            await p.store.uow.commit(self._tenant, [*ops, *stamp_ops(session, pinned, now)])
        except Conflict as conflict:
            if conflict.reason != "mode":
                raise
            return None
        self._held_group = group.group_id
        log.info(
            "cooldown.released",
            tenant=self._tenant,
            session_id=self._session_id,
            turn_id=running.turn_id,
            from_seq=running.from_seq,
            to_seq=running.to_seq,
        )
        await p.checkpoints.reached(Phase.WINDOW_OPENED, self._tenant, self._session_id)
        await p.checkpoints.reached(Phase.RUN_STARTED, self._tenant, self._session_id)
        return running

    async def held_by(self, turn: Turn, keeper: LeaseKeeper) -> Mapping[str, str] | None:
        """The record details of a turn answering a cool-down's held messages (None for
        any other turn): one this driver opened (or its restart, in the same group), or
        one it adopted (another fence: a crash, a take-over) whose group opened with the
        held messages' window (``window.opened`` reason ``HELD_REASON``)."""
        held = mode_turn_units.held_details(SessionMode.COOLDOWN)
        if turn.group_id == self._held_group:
            return held
        if turn.fence == keeper.fence:
            return None  # opened by this driver as an ordinary turn
        p = self._parts
        group = await p.store.turns.get_group(self._tenant, turn.group_id)
        if group is None:
            return None
        opened = await p.store.events.query(
            self._tenant,
            EventQuery(
                session_id=self._session_id,
                kinds=(EventKind.WINDOW_OPENED,),
                from_ms=group.created_at_ms,
                to_ms=group.created_at_ms + 1,
                in_commit_order=False,
            ),
        )
        for event in opened:
            if (
                event.correlation.group_id == turn.group_id
                and event.data.get("reason") == mode_turn_units.HELD_REASON
            ):
                self._held_group = turn.group_id
                return held
        return None

    def end(self, at_ms: int) -> EndCooldown:
        """The op that ends the session's cool-down (a no-op if it did not end by then)."""
        return EndCooldown(self._tenant, self._session_id, at_ms)

    async def _stand_down(
        self, session: SessionRecord, live: Turn, keeper: LeaseKeeper
    ) -> ModeStep:
        """End the live turn without a reply: the session left agent mode under it (a
        crash, a take-over, or a window that was accumulating). One RUNNING past the
        irreversible gate is stopped silently, consuming its range
        (``mode_turn_units.leave_agent_mode``)."""
        p = self._parts
        served = await self._pin.pinned(session, keeper, starting=False)
        if served is None:
            return ModeStep.IDLE  # the session is gone
        versions = p.versions(served[1].binding)
        # Calls of its group left ``started`` (it was cut off mid-call) are settled with it.
        entries = await p.store.ledger.query(self._tenant, LedgerQuery(group_id=live.group_id))
        unfinished = [e for e in entries if e.status is LedgerStatus.STARTED]
        now = p.clock.now_ms()
        ops = mode_turn_units.leave_agent_mode(
            live, keeper.fence, versions, now, session.mode, unfinished=unfinished
        )
        await self._commit(ops)
        log.info(
            "turn.stopped_past_gate" if live.irreversible_started else "turn.stood_down",
            tenant=self._tenant,
            session_id=self._session_id,
            turn_id=live.turn_id,
            mode=session.mode.value,
        )
        return ModeStep.AGAIN

    async def _drop(self, session: SessionRecord, keeper: LeaseKeeper) -> None:
        """A DROP turn over every unconsumed message of the blocked session; none when its
        block has expired (the mode watch did not lift it yet): it is lifted here instead,
        in a unit of its own (``LiftBlock``, ``lifted_by`` ``expiry``), and the messages
        are left to whoever answers them now."""
        p = self._parts
        block_id = blocked_by(session.mode_reason)
        block = None if block_id is None else await p.store.blocks.get(self._tenant, block_id)
        now = p.clock.now_ms()
        if block is not None and block.lifted_at_ms is None and not block.active_at(now):
            await self._lift_expired(block_id or "", keeper, now, session)
            return
        turn = turn_progress_units.new_accumulating_turn(
            session_id=self._session_id,
            tenant=self._tenant,
            turn_id=new_id(),
            group_id=new_id(),
            trace_id=session.pending_trace_id or new_trace_id(),
            from_seq=session.consumed_seq,
            last_seq=session.last_seq,
            fence=keeper.fence,
            at_ms=now,
        )
        reason = block.reason if block is not None else session.mode_reason
        try:
            await self._commit(mode_turn_units.drop(turn, keeper.fence, block_id, reason))
        except Conflict as conflict:
            if conflict.reason != "mode":
                raise
            return  # the block was lifted meanwhile: the agent answers them
        log.info(
            "abuse.messages_dropped",
            tenant=self._tenant,
            session_id=self._session_id,
            from_seq=turn.from_seq,
            to_seq=turn.to_seq,
            block_id=block_id,
        )

    async def _lift_expired(
        self, block_id: str, keeper: LeaseKeeper, now: int, session: SessionRecord
    ) -> None:
        """Lift an expired block found by a DROP; a lift that lost to another (the mode
        watch, an operator) is no matter: the session's mode is read again either way."""
        trace = session.pending_trace_id or new_trace_id()
        lift = LiftBlock(self._tenant, block_id, BLOCK_EXPIRY, now, trace)
        try:
            await self._commit([CheckFence(self._session_id, keeper.fence, now), lift])
        except Conflict as conflict:
            if conflict.reason != "not_found":
                raise
            return
        log.info(
            "block.expired", tenant=self._tenant, session_id=self._session_id, block_id=block_id
        )

    async def _commit(self, ops: Sequence[WriteOp[Any]]) -> None:
        try:
            await self._parts.store.uow.commit(self._tenant, ops)
        except Conflict as conflict:
            if conflict.reason in ("fence", "turn"):
                raise LeaseLost(conflict.reason) from conflict
            raise
