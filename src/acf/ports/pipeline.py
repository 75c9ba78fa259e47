"""The pipeline contract (DESIGN §7): the agent logic, a black box the runtime calls."""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from acf.domain.agent_sessions import AgentSessionRow
from acf.domain.capabilities import ChannelCapabilities
from acf.domain.events import Correlation
from acf.domain.messages import InboundMessage
from acf.domain.replies import PipelineResult, ReplySegment
from acf.domain.state import PendingConfirmation
from acf.domain.supersede import SupersedeDecision
from acf.domain.tools import ToolResult
from acf.ports.clock import Clock
from acf.ports.dead_letters import DeadLetter
from acf.ports.ledger import LedgerEntry

T = TypeVar("T")


class PendingInput(Exception):
    """An irreversible action was refused: the customer sent messages the turn has not seen.

    The pipeline may finish without the action, or retry with ``force=True``
    (FORCE_COMPLETE, audited).
    """


class InDoubt(Exception):
    """An irreversible action may already have run in an earlier attempt of this turn (the
    process died, or the lease was lost, after the gate). It is never run again blindly:
    the turn fails at once and a person follows up. (The tool ledger resolves this.)"""


class ToolCaller(Protocol):
    """The tool gateway as a pipeline sees it (``ctx.tools``)."""

    async def call(self, name: str, args: Mapping[str, Any]) -> ToolResult:
        """Run tool ``name`` through the gateway. A refused tool, bad arguments, a failed or
        in-doubt run come back as a ``ToolResult``; ``PendingInput`` is raised when an
        IRREVERSIBLE tool meets unseen messages (see ``enter_irreversible``). A tool that
        requires confirmation is refused: ask with ``request_confirmation``."""
        ...

    async def compensate(self, execution_id: str) -> ToolResult:
        """Undo a succeeded COMPENSATABLE execution of this session (its compensation tool),
        then mark it compensated in the ledger."""
        ...


class AgentSessionAccess(Protocol):
    """The conversation's agent-service sessions (``acf.ports.agent_sessions``) as a
    pipeline sees them (``ctx.agent_sessions``): reads scoped to the turn's tenant and
    session, writes committed at once under the turn's fence."""

    async def open(self) -> AgentSessionRow | None:
        """The conversation's ACTIVE or AWAITING_USER row, if any."""
        ...

    async def latest(self) -> AgentSessionRow | None:
        """The conversation's most recently used row of this turn's agent."""
        ...

    async def save(self, row: AgentSessionRow, event: str | None = None, **data: Any) -> None:
        """Write ``row`` now, fenced like ``step`` and ``emit`` (the turn's lease lost: the
        same error they raise; let it propagate), with the progress event ``event`` (its
        ``data``) in the same transaction when given. Raises ``AgentSessionConflict`` for a
        second open row of the conversation."""
        ...


class TurnContext(Protocol):
    """What a running pipeline sees and may do. Everything it writes is fenced."""

    @property
    def correlation(self) -> Correlation: ...

    @property
    def messages(self) -> Sequence[InboundMessage]:
        """The turn's messages, ``(from_seq, to_seq]``; grows with ``absorb()``."""
        ...

    @property
    def history(self) -> Sequence[InboundMessage]:
        """The messages before the turn (the history window), oldest first."""
        ...

    @property
    def replies_history(self) -> Sequence[Mapping[str, Any]]:
        """What the customer could see of the replies committed in this session, oldest
        first: never a part that was cut or failed. Each is the row's payload (``text``,
        ``buttons``, ...) with ``at_ms``, ``turn_id`` and ``status``."""
        ...

    @property
    def state(self) -> Mapping[str, Any]: ...

    @property
    def config(self) -> Mapping[str, Any]:
        """The agent's resolved configuration."""
        ...

    @property
    def capabilities(self) -> ChannelCapabilities:
        """What the channel of the turn's newest message can show (acf's defaults with
        the tenant's overrides): text length, buttons, media, markdown."""
        ...

    @property
    def attempt(self) -> int: ...

    @property
    def replay(self) -> DeadLetter | None:
        """On a REPLAY turn (``acf dead-letters replay``): the dead letter it runs again.
        Its message range is empty; the letter's ``request`` is what failed."""
        ...

    @property
    def agent_sessions(self) -> AgentSessionAccess: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def deadline_ms(self) -> int:
        """Wall-clock instant (ms) after which the attempt is cancelled."""
        ...

    @property
    def log(self) -> Any:
        """A structlog logger bound to the correlation ids."""
        ...

    @property
    def tools(self) -> ToolCaller: ...

    @property
    def pending_confirmation(self) -> PendingConfirmation | None:
        """An action waiting for the customer's yes, when this turn did not settle it."""
        ...

    @property
    def confirmation(self) -> Mapping[str, Any] | None:
        """How a pending confirmation was settled before the pipeline ran:
        ``{"answer": "yes" | "no" | "expired", "outcome": ToolResult outcome or None}``."""
        ...

    async def request_confirmation(
        self, tool: str, args: Mapping[str, Any], prompt: str, ttl_ms: int = ...
    ) -> ReplySegment:
        """Ask the customer to confirm ``tool(args)``: returns the question (with Yes / No
        buttons) to include in the reply; the pending action (key fixed now) is stored
        with the turn's commit. Only an explicit yes in a later turn runs it; never a
        timeout."""
        ...

    async def linked_identities(self) -> Mapping[str, str]:
        """The customer's addresses, one per channel (channel name → address), when the
        tenant linked the address of this turn to a customer; empty otherwise. They
        inform an agent (``user_context``); they never authorise anything."""
        ...

    async def ledger_entries(self) -> Sequence[LedgerEntry]:
        """What this turn group already ran (a restart or a recovery sees earlier calls)."""
        ...

    async def has_pending_messages(self) -> bool:
        """Whether the session holds messages newer than the turn's range."""
        ...

    async def absorb(self) -> list[InboundMessage]:
        """Take the newer messages into this turn (the range extends); returns them."""
        ...

    async def emit(self, name: str, data: Mapping[str, Any] | None = None) -> None:
        """Record a progress event (``turn.progress`` named ``name``); its data carries the
        turn's ``agent`` unless ``data`` names one."""
        ...

    async def draft(self, text: str) -> None:
        """The reply so far (the WHOLE text, not a delta) while the pipeline is still
        writing it: shown at once on channels that can stream (web chat), coalesced, never
        stored, sent or put in history. Call it as often as you like (each token, say): the
        first goes out at once, then at most ten a second, the latest text winning. If the
        attempt ends without its reply (superseded, failed), the drafts are withdrawn; the
        committed reply replaces them."""
        ...

    async def step(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` once per turn group, name and input: a restart or a recovery
        gets the stored (JSON) result instead of running it again."""
        ...

    async def enter_irreversible(self, force: bool = False) -> None:
        """Pass the irreversible gate (DESIGN §6) before an IRREVERSIBLE action.

        Raises ``PendingInput`` when newer messages exist and ``force`` is not set: before
        the gate was passed the turn is then superseded instead (the exception reaches the
        runtime); after it, the pipeline decides. Past the restart bound the gate passes
        (audited), so a chatty customer cannot starve the agent. Raises ``InDoubt`` when an
        earlier attempt of the turn passed the gate already.
        """
        ...

    async def shielded(self, action: Awaitable[T]) -> T:
        """Run ``action`` so that a supersede waits for it to finish instead of cutting it."""
        ...


@runtime_checkable
class Pipeline(Protocol):
    """The agent logic. ``run`` returns a result or raises (the attempt then fails)."""

    name: str
    version: str

    async def run(self, ctx: TurnContext) -> PipelineResult: ...


@runtime_checkable
class SupersedeHook(Protocol):
    """Optional: a pipeline implementing this decides per turn what new messages do."""

    def on_new_messages(
        self, ctx: TurnContext, new_messages: Sequence[InboundMessage]
    ) -> SupersedeDecision | None: ...


@runtime_checkable
class ClosablePipeline(Protocol):
    """Optional: a pipeline holding connections (an LLM client) closes them when the
    service stops, after the last turn ended."""

    async def aclose(self) -> None: ...
