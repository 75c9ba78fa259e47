"""The turn a runner is running: its current row, the session's lease and fenced commits.

The runner, the pipeline's context and the irreversible gate share this one object. Only
``turn`` changes while it runs (a new attempt, an absorb, the gate), and
``news_decision`` (what the runner or the gate decided about newer messages), and
``drafted`` (an attempt whose drafts are still shown); every other choice is a value
returned by ``domain.turn_steps``. A unit recording that an attempt which drafted ended
without its reply carries the drafts' withdrawal (``service.drafts.with_withdrawal``).
It also counts the tool calls the gateway refused (``tool.refused``), which the firewall's
``policy_blocks`` detector counts at the turn's end.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind
from acf.domain.messages import InboundMessage
from acf.domain.modes import SessionMode
from acf.domain.session_key import SessionKey
from acf.domain.supersede import SupersedeDecision
from acf.domain.turns import Turn
from acf.ports.checkpoints import Checkpoints, NoCheckpoints
from acf.ports.clock import Clock
from acf.ports.dead_letters import DeadLetter
from acf.ports.drafts import DraftBus
from acf.ports.event_store import AppendEvent
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp
from acf.service import turn_progress_units
from acf.service.drafts import Drafted, with_withdrawal
from acf.service.lease_keeper import LeaseKeeper
from acf.service.tasks import TaskSet


class LeaseLost(Exception):
    """The turn's fence no longer holds: another holder may own the session now."""


class ModeChanged(Exception):
    """The session left agent mode before the turn passed the irreversible gate (a
    handoff, a cool-down, a block): the gate refused, and the turn stands down."""


@dataclass(slots=True)
class RunningTurn:
    """One RUNNING turn while this process holds its session's lease."""

    turn: Turn
    key: SessionKey
    store: Store
    clock: Clock
    tasks: TaskSet
    keeper: LeaseKeeper
    versions: turn_progress_units.Versions
    checkpoints: Checkpoints = field(default_factory=NoCheckpoints)
    off: bool = False
    """Accumulation is OFF on this channel: one message per turn, newer ones wait."""
    news_decision: SupersedeDecision | None = None
    """What this run decided about newer messages (ABSORB, QUEUE, FORCE_COMPLETE), if
    anything yet; a FORCE_COMPLETE stays."""
    drafts: DraftBus | None = None
    """Where the attempts' drafts go (``ctx.draft``); None: nowhere."""
    drafted: Drafted | None = None
    """The attempt whose drafts are shown and not yet withdrawn or replaced by the reply."""
    replay: DeadLetter | None = None
    """On a REPLAY turn (an empty range): the dead letter it runs again."""
    refused_tools: int = 0
    """Tool calls the gateway refused in this turn (``tool.refused`` events it wrote)."""

    @property
    def correlation(self) -> Correlation:
        return turn_progress_units.correlation(self.turn, self.versions)

    async def commit(self, ops: Sequence[WriteOp[Any]]) -> Any:
        """Commit a fenced unit; a refused fence or turn row means the lease is lost."""
        if self.keeper.lost.is_set():
            raise LeaseLost("the lease is no longer held")  # before the database says so
        ops, settles = with_withdrawal(ops, self.drafted)
        try:
            results = await self.store.uow.commit(self.turn.tenant, ops)
        except Conflict as conflict:
            if conflict.reason in ("fence", "turn"):
                raise LeaseLost(conflict.reason) from conflict
            raise
        if settles:
            self.drafted = None
        self.refused_tools += sum(
            1
            for op in ops
            if isinstance(op, AppendEvent) and op.event.kind is EventKind.TOOL_REFUSED
        )
        return results

    async def mode(self) -> SessionMode | None:
        """The session's mode now (None when the session is gone)."""
        session = await self.store.sessions.get(self.turn.tenant, self.turn.session_id)
        return None if session is None else session.mode

    async def has_unseen(self) -> bool:
        """Whether the session holds messages this turn has not seen (never with
        accumulation OFF: newer messages are turns of their own)."""
        if self.off:
            return False
        session = await self.store.sessions.get(self.turn.tenant, self.turn.session_id)
        return session is not None and session.last_seq > self.turn.to_seq

    async def unseen(self) -> tuple[int, list[InboundMessage]]:
        """The session's last seq and the messages after this turn's range."""
        t = self.turn
        session = await self.store.sessions.get(t.tenant, t.session_id)
        if session is None or session.last_seq <= t.to_seq:
            return t.to_seq, []
        new = await self.store.messages.read_range(
            t.tenant, t.session_id, t.to_seq, session.last_seq
        )
        return session.last_seq, new
