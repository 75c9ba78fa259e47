"""The TurnContext a running pipeline gets (DESIGN §7). Every write it makes is fenced."""

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import structlog

from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.errors import Conflict, InvalidValue
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import new_id
from acf.domain.messages import InboundMessage
from acf.domain.replies import Button, ReplySegment
from acf.domain.session_key import SessionKey
from acf.domain.state import PendingConfirmation, replacement_patch
from acf.domain.supersede import SupersedeDecision
from acf.domain.tools import ToolResult
from acf.domain.turns import Turn
from acf.ports.checkpoints import Checkpoints, NoCheckpoints
from acf.ports.clock import Clock
from acf.ports.event_store import AppendEvent
from acf.ports.lease import CheckFence
from acf.ports.ledger import LedgerEntry, LedgerQuery
from acf.ports.pipeline import InDoubt, PendingInput
from acf.ports.step_memo import MemoKey, RememberStep
from acf.ports.store import Store
from acf.ports.turn_store import MarkIrreversibleStarted
from acf.ports.unit_of_work import WriteOp
from acf.service import turn_units
from acf.service.lease_keeper import LeaseKeeper
from acf.service.tasks import TaskSet
from acf.service.tool_gateway import ToolGateway, ToolRegistry

T = TypeVar("T")


DEFAULT_CONFIRMATION_TTL_MS = 10 * 60 * 1000
REPLACED_PREFIX = "(This replaces your earlier question.) "


class LeaseLost(Exception):
    """The turn's fence no longer holds: another holder may own the session now."""


@dataclass(slots=True)
class TurnFrame:
    """What the runner and the context share about the running turn."""

    turn: Turn
    key: SessionKey
    store: Store
    clock: Clock
    tasks: TaskSet
    keeper: LeaseKeeper
    versions: turn_units.Versions
    checkpoints: Checkpoints = field(default_factory=NoCheckpoints)
    mode: SupersedeDecision | None = None
    """A decision taken on new messages (QUEUE / FORCE_COMPLETE / ABSORB), if any."""
    gate_refused: bool = False
    """The irreversible gate refused because of new messages before it was ever passed."""
    off: bool = False
    """Accumulation is OFF on this channel: one message per turn, newer ones wait."""
    restart_bound_reached: bool = False
    gate_passed_before: bool = False
    """An earlier attempt of this turn passed the irreversible gate."""
    commit_patch: dict[str, Any] | None = None
    """State the turn's commit must also write (a confirmation request), per attempt."""
    commit_events: list[WriteOp[Any]] = field(default_factory=list)
    confirmation: Mapping[str, Any] | None = None
    """How a pending confirmation was settled before this attempt's pipeline ran."""

    @property
    def correlation(self) -> Correlation:
        return turn_units.correlation(self.turn, self.versions)

    async def commit(self, ops: Sequence[WriteOp[Any]]) -> Any:
        if self.keeper.lost.is_set():
            raise LeaseLost("the lease is no longer held")  # before the database says so
        try:
            return await self.store.uow.commit(self.turn.tenant, ops)
        except Conflict as conflict:
            if conflict.reason in ("fence", "turn"):
                raise LeaseLost(conflict.reason) from conflict
            raise


def fingerprint(args: Sequence[Any]) -> str:
    body = json.dumps(list(args), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


class RunningTurnContext:
    """Implements the ``TurnContext`` port over a ``TurnFrame``."""

    def __init__(
        self,
        frame: TurnFrame,
        messages: Sequence[InboundMessage],
        history: Sequence[InboundMessage],
        replies_history: Sequence[Mapping[str, Any]],
        state: Mapping[str, Any],
        config: Mapping[str, Any],
        deadline_ms: int,
        tools: ToolRegistry | None = None,
        capabilities: ChannelCapabilities | None = None,
    ) -> None:
        self._frame = frame
        self._capabilities = capabilities or DEFAULT_CAPABILITIES[frame.key.channel]
        self._messages = list(messages)
        self._history = list(history)
        self._replies_history = list(replies_history)
        self._state = state
        self._config = config
        self._deadline_ms = deadline_ms
        self._tools = ToolGateway(
            frame,
            tools or ToolRegistry(),
            frame.key.customer,
            lambda: self._pass_gate(force=False, trust_ledger=True),
            self.shielded,
        )
        self._log = structlog.get_logger("acf.pipeline").bind(
            **frame.correlation.fields(), attempt=frame.turn.attempt
        )

    @property
    def correlation(self) -> Correlation:
        return self._frame.correlation

    @property
    def messages(self) -> Sequence[InboundMessage]:
        return tuple(self._messages)

    @property
    def history(self) -> Sequence[InboundMessage]:
        return tuple(self._history)

    @property
    def replies_history(self) -> Sequence[Mapping[str, Any]]:
        return tuple(self._replies_history)

    @property
    def state(self) -> Mapping[str, Any]:
        return self._state

    @property
    def config(self) -> Mapping[str, Any]:
        return self._config

    @property
    def capabilities(self) -> ChannelCapabilities:
        return self._capabilities

    @property
    def attempt(self) -> int:
        return self._frame.turn.attempt

    @property
    def clock(self) -> Clock:
        return self._frame.clock

    @property
    def deadline_ms(self) -> int:
        return self._deadline_ms

    @property
    def log(self) -> Any:
        return self._log

    @property
    def tools(self) -> ToolGateway:
        return self._tools

    @property
    def pending_confirmation(self) -> PendingConfirmation | None:
        raw = self._state.get("meta", {}).get("confirmation")
        return None if raw is None else PendingConfirmation.model_validate(raw)

    @property
    def confirmation(self) -> Mapping[str, Any] | None:
        return self._frame.confirmation

    async def request_confirmation(
        self,
        tool: str,
        args: Mapping[str, Any],
        prompt: str,
        ttl_ms: int = DEFAULT_CONFIRMATION_TTL_MS,
    ) -> ReplySegment:
        f = self._frame
        checked = await self._tools.prepare(tool, args)
        if isinstance(checked, ToolResult):
            raise InvalidValue(f"cannot ask to confirm {tool}: {checked.error}")
        now = f.clock.now_ms()
        cid = new_id()[:16]
        earlier = self.pending_confirmation
        if earlier is not None:  # the customer is told that the new question replaces it
            prompt = f"{REPLACED_PREFIX}{prompt}"
        pending = PendingConfirmation(
            confirmation_id=cid,
            tool=tool,
            args=dict(args),
            idempotency_key=checked[1],
            prompt=prompt,
            yes_id=f"confirm:{cid}:yes",
            no_id=f"confirm:{cid}:no",
            requested_at_ms=now,
            expires_at_ms=now + ttl_ms,
        )
        # Replace, not merge: nothing of an earlier question (its arguments) may survive.
        earlier_fields = None if earlier is None else earlier.model_dump()
        f.commit_patch = {
            "meta": {"confirmation": replacement_patch(earlier_fields, pending.model_dump())}
        }
        data = {"confirmation_id": cid, "tool": tool, "expires_at_ms": pending.expires_at_ms}
        if earlier is not None:
            data["replaces"] = earlier.confirmation_id
        f.commit_events = [
            AppendEvent(FabricEvent(EventKind.CONFIRMATION_REQUESTED, now, f.correlation, data))
        ]
        return ReplySegment(prompt, (Button(pending.yes_id, "Yes"), Button(pending.no_id, "No")))

    async def ledger_entries(self) -> list[LedgerEntry]:
        f = self._frame
        return await f.store.ledger.query(f.turn.tenant, LedgerQuery(group_id=f.turn.group_id))

    async def has_pending_messages(self) -> bool:
        if self._frame.off:
            return False  # accumulation OFF: newer messages are turns of their own
        turn = self._frame.turn
        session = await self._frame.store.sessions.get(turn.tenant, turn.session_id)
        return session is not None and session.last_seq > turn.to_seq

    async def absorb(self) -> list[InboundMessage]:
        f = self._frame
        if f.off:
            return []  # accumulation OFF: each message is answered on its own
        turn = f.turn
        session = await f.store.sessions.get(turn.tenant, turn.session_id)
        if session is None or session.last_seq <= turn.to_seq:
            return []
        new = await f.store.messages.read_range(
            turn.tenant, turn.session_id, turn.to_seq, session.last_seq
        )
        now = f.clock.now_ms()
        await f.commit(turn_units.absorb(turn, f.keeper.fence, session.last_seq, now, f.versions))
        f.turn = replace(turn, to_seq=session.last_seq, fence=f.keeper.fence)
        self._messages.extend(new)
        return new

    async def emit(self, name: str, data: Mapping[str, Any] | None = None) -> None:
        f = self._frame
        now = f.clock.now_ms()
        await f.commit(
            turn_units.progress(f.turn, f.keeper.fence, name, data or {}, now, f.versions)
        )

    async def step(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        f = self._frame
        key = MemoKey(f.turn.group_id, name, fingerprint(args))
        found, value = await f.store.memo.recall(f.turn.tenant, key)
        if found:
            return value  # type: ignore[no-any-return]
        result = await fn(*args)
        op = RememberStep(key, result, f.clock.now_ms())
        guard = turn_units.progress(
            f.turn, f.keeper.fence, "step", {"step": name}, f.clock.now_ms(), f.versions
        )
        results = await f.commit([*guard, op])
        return results.get(op)  # type: ignore[no-any-return]

    async def enter_irreversible(self, force: bool = False) -> None:
        await self._pass_gate(force, trust_ledger=False)

    async def _pass_gate(self, force: bool, trust_ledger: bool) -> None:
        """The gate. Through the gateway (``trust_ledger``), a turn whose gate an earlier
        attempt passed goes on: the ledger knows what ran. Called directly, it cannot know."""
        f = self._frame
        turn = f.turn
        now = f.clock.now_ms()
        if f.gate_passed_before and not trust_ledger:
            # An earlier attempt of this turn passed the gate: its action may have run.
            raise InDoubt("an earlier attempt of this turn started an irreversible action")
        # Why the gate may pass despite newer messages: the pipeline forces it, the hook
        # chose FORCE_COMPLETE, or the restart bound is reached (QUEUE: never starve).
        if force or f.mode is SupersedeDecision.FORCE_COMPLETE:
            why: str | None = "pipeline"
        elif f.restart_bound_reached:
            why = "restart_bound"
        else:
            why = None
        if turn.irreversible_started:
            if await self.has_pending_messages():
                if why is None:
                    raise PendingInput("the customer sent messages this turn has not seen")
                await f.commit(self._forced(now, why))
            return
        # With accumulation OFF, newer messages are other turns': the gate ignores them.
        unconditional = why is not None or f.off
        gate = MarkIrreversibleStarted(turn.turn_id, f.keeper.fence, unconditional, now)
        event = AppendEvent(
            FabricEvent(
                EventKind.TURN_IRREVERSIBLE_STARTED,
                now,
                f.correlation,
                {"forced": why, "to_seq": turn.to_seq, "off": f.off},
            )
        )
        ops: list[WriteOp[Any]] = [gate, event]
        if why is not None and await self.has_pending_messages():
            ops += self._forced(now, why)[1:]  # the gate itself is the fence check
        try:
            await f.commit(ops)
        except Conflict as conflict:
            if conflict.reason == "new_messages":
                f.gate_refused = True
                raise PendingInput("the customer sent messages this turn has not seen") from None
            raise LeaseLost(conflict.reason) from conflict
        f.turn = replace(turn, irreversible_started=True)

    def _forced(self, now: int, why: str) -> list[WriteOp[Any]]:
        """FORCE_COMPLETE, audited; the turn then behaves as QUEUE."""
        f = self._frame
        f.mode = SupersedeDecision.FORCE_COMPLETE
        return [
            CheckFence(f.turn.session_id, f.keeper.fence, now),
            AppendEvent(
                FabricEvent(
                    EventKind.TURN_FORCE_COMPLETED,
                    now,
                    f.correlation,
                    {"to_seq": f.turn.to_seq, "reason": why},
                )
            ),
        ]

    async def shielded(self, action: Awaitable[T]) -> T:
        inner = self._frame.tasks.spawn(_await(action), "shielded")
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            # A supersede waits for the call in flight; a dropped runtime does not.
            if not self._frame.tasks.closed:
                await asyncio.wait({inner})
            raise


async def _await(action: Awaitable[T]) -> T:
    return await action
