"""The TurnContext a running pipeline gets (DESIGN §7). Every write it makes is fenced."""

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import structlog

from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.errors import InvalidValue
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.fallback import Route
from acf.domain.ids import new_id
from acf.domain.messages import InboundMessage
from acf.domain.replies import Button, ReplySegment
from acf.domain.state import PendingConfirmation, replacement_patch
from acf.domain.tools import ToolResult
from acf.ports.clock import Clock
from acf.ports.dead_letters import DeadLetter
from acf.ports.event_store import AppendEvent
from acf.ports.ledger import LedgerEntry, LedgerQuery
from acf.ports.step_memo import MemoKey, RememberStep
from acf.ports.tool_registry import ToolRegistry
from acf.ports.unit_of_work import WriteOp
from acf.service import turn_progress_units
from acf.service.drafts import Drafted, DraftSource, DraftStream
from acf.service.irreversible_gate import IrreversibleGate
from acf.service.running_turn import RunningTurn
from acf.service.tool_gateway import ToolGateway
from acf.service.turn_agent_sessions import TurnAgentSessions

T = TypeVar("T")


DEFAULT_CONFIRMATION_TTL_MS = 10 * 60 * 1000
REPLACED_PREFIX = "(This replaces your earlier question.) "


def fingerprint(args: Sequence[Any]) -> str:
    body = json.dumps(list(args), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ConfirmationRequest:
    """What the turn's commit must also write when the pipeline asked to confirm."""

    state_patch: dict[str, Any]
    events: list[WriteOp[Any]]


class RunningTurnContext:
    """Implements the ``TurnContext`` port for one attempt of a ``RunningTurn``."""

    def __init__(
        self,
        run: RunningTurn,
        gate: IrreversibleGate,
        messages: Sequence[InboundMessage],
        history: Sequence[InboundMessage],
        replies_history: Sequence[Mapping[str, Any]],
        state: Mapping[str, Any],
        config: Mapping[str, Any],
        deadline_ms: int,
        tools: ToolRegistry | None = None,
        capabilities: ChannelCapabilities | None = None,
    ) -> None:
        self._run = run
        self._gate = gate
        self.confirmation_request: ConfirmationRequest | None = None
        """Set by ``request_confirmation``: the commit writes it too."""
        self.settled: Mapping[str, Any] | None = None
        """How a pending confirmation was settled before this attempt's pipeline ran."""
        self._capabilities = capabilities or DEFAULT_CAPABILITIES[run.key.channel]
        self._messages = list(messages)
        self._history = list(history)
        self._replies_history = list(replies_history)
        self._state = state
        self._config = config
        self._deadline_ms = deadline_ms
        self._tools = ToolGateway(
            run,
            tools or ToolRegistry(),
            run.key.customer,
            lambda: gate.enter(force=False, trust_ledger=True),
            self.shielded,
        )
        self._log = structlog.get_logger("acf.pipeline").bind(
            **run.correlation.fields(), attempt=run.turn.attempt
        )
        self._drafts: DraftStream | None = None
        self._drafts_ended = False
        self._agent_sessions = TurnAgentSessions(run)

    @property
    def correlation(self) -> Correlation:
        return self._run.correlation

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
        return self._run.turn.attempt

    @property
    def replay(self) -> DeadLetter | None:
        return self._run.replay

    @property
    def agent_sessions(self) -> TurnAgentSessions:
        return self._agent_sessions

    @property
    def clock(self) -> Clock:
        return self._run.clock

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
        return self.settled

    async def request_confirmation(
        self,
        tool: str,
        args: Mapping[str, Any],
        prompt: str,
        ttl_ms: int = DEFAULT_CONFIRMATION_TTL_MS,
    ) -> ReplySegment:
        f = self._run
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
        patch = {"meta": {"confirmation": replacement_patch(earlier_fields, pending.model_dump())}}
        data = {"confirmation_id": cid, "tool": tool, "expires_at_ms": pending.expires_at_ms}
        if earlier is not None:
            data["replaces"] = earlier.confirmation_id
        event = AppendEvent(FabricEvent(EventKind.CONFIRMATION_REQUESTED, now, f.correlation, data))
        self.confirmation_request = ConfirmationRequest(patch, [event])
        return ReplySegment(prompt, (Button(pending.yes_id, "Yes"), Button(pending.no_id, "No")))

    async def linked_identities(self) -> Mapping[str, str]:
        f = self._run
        key = f.key
        linked = await f.store.identities.linked(f.turn.tenant, Route(key.channel, key.customer))
        return {channel.value: address for channel, address in linked.items()}

    async def ledger_entries(self) -> list[LedgerEntry]:
        f = self._run
        return await f.store.ledger.query(f.turn.tenant, LedgerQuery(group_id=f.turn.group_id))

    async def has_pending_messages(self) -> bool:
        return await self._run.has_unseen()

    async def absorb(self) -> list[InboundMessage]:
        f = self._run
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
        await f.commit(
            turn_progress_units.absorb(turn, f.keeper.fence, session.last_seq, now, f.versions)
        )
        f.turn = replace(turn, to_seq=session.last_seq, fence=f.keeper.fence)
        self._messages.extend(new)
        return new

    async def emit(self, name: str, data: Mapping[str, Any] | None = None) -> None:
        f = self._run
        now = f.clock.now_ms()
        body = {"agent": f.key.agent, **(data or {})}  # metrics count per agent
        await f.commit(
            turn_progress_units.progress(f.turn, f.keeper.fence, name, body, now, f.versions)
        )

    async def draft(self, text: str) -> None:
        if not self._capabilities.streams_drafts:
            return  # a channel that shows only committed replies (DESIGN §16)
        stream = self._drafts
        if stream is None:
            f = self._run
            if f.drafts is None or self._drafts_ended:
                return
            t, fence = f.turn, f.keeper.fence
            source = DraftSource(t.tenant, t.session_id, t.turn_id, t.attempt, fence)
            stream = self._drafts = DraftStream(f.drafts, source, f.clock, f.tasks.spawn)
            f.drafted = Drafted(t.attempt, fence)  # its end without a reply withdraws them
        stream.offer(text)

    def end_drafts(self) -> None:
        """The attempt ended: a pending draft is dropped, later ones are ignored."""
        self._drafts_ended = True
        if self._drafts is not None:
            self._drafts.close()

    async def step(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        f = self._run
        key = MemoKey(f.turn.group_id, name, fingerprint(args))
        found, value = await f.store.memo.recall(f.turn.tenant, key)
        if found:
            return value  # type: ignore[no-any-return]
        result = await fn(*args)
        op = RememberStep(key, result, f.clock.now_ms())
        guard = turn_progress_units.progress(
            f.turn, f.keeper.fence, "step", {"step": name}, f.clock.now_ms(), f.versions
        )
        results = await f.commit([*guard, op])
        return results.get(op)  # type: ignore[no-any-return]

    async def enter_irreversible(self, force: bool = False) -> None:
        await self._gate.enter(force, trust_ledger=False)

    async def shielded(self, action: Awaitable[T]) -> T:
        inner = self._run.tasks.spawn(_await(action), "shielded")
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            # A supersede waits for the call in flight; a dropped runtime does not.
            if not self._run.tasks.closed:
                await asyncio.wait({inner})
            raise


async def _await(action: Awaitable[T]) -> T:
    return await action
