"""The ``TurnContext`` a router's child runs with: the turn's own context, delegated call for
call, except for what routing changes.

- The message that started with the routing command (``/agent hi``) reads without it
  (``hi``), also after ``absorb()`` adds messages; a message that held only the command
  reads as having no text. Everything else about the messages is untouched.
- On a REPLAY turn, the dead letter's request reads without the router's own key (which
  route failed), so the child sees the request it recorded.

Everything the child writes (tools, steps, drafts, events, agent sessions) goes to the
turn's context unchanged, so every guarantee of the fabric holds for the child as for any
pipeline.
"""

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from acf.domain.capabilities import ChannelCapabilities
from acf.domain.events import Correlation
from acf.domain.ids import MessageId
from acf.domain.messages import InboundMessage
from acf.domain.replies import ReplySegment
from acf.domain.state import PendingConfirmation
from acf.ports.clock import Clock
from acf.ports.dead_letters import DeadLetter
from acf.ports.ledger import LedgerEntry
from acf.ports.pipeline import AgentSessionAccess, ToolCaller, TurnContext

T = TypeVar("T")

ROUTE_KEY = "router.route"
"""The key of a failed call's request under which the router records the route that failed
(read back when its dead letter is replayed)."""


class RoutedContext:
    """Implements ``TurnContext`` over ``inner``; ``rewritten`` maps a message's id to the
    text the child reads instead (None: no text)."""

    def __init__(self, inner: TurnContext, rewritten: Mapping[MessageId, str | None]) -> None:
        self._inner = inner
        self._rewritten = dict(rewritten)

    def _present(self, message: InboundMessage) -> InboundMessage:
        if message.message_id not in self._rewritten:
            return message
        return dataclasses.replace(message, text=self._rewritten[message.message_id])

    @property
    def correlation(self) -> Correlation:
        return self._inner.correlation

    @property
    def messages(self) -> Sequence[InboundMessage]:
        return tuple(self._present(m) for m in self._inner.messages)

    @property
    def history(self) -> Sequence[InboundMessage]:
        return self._inner.history

    @property
    def replies_history(self) -> Sequence[Mapping[str, Any]]:
        return self._inner.replies_history

    @property
    def state(self) -> Mapping[str, Any]:
        return self._inner.state

    @property
    def config(self) -> Mapping[str, Any]:
        return self._inner.config

    @property
    def capabilities(self) -> ChannelCapabilities:
        return self._inner.capabilities

    @property
    def attempt(self) -> int:
        return self._inner.attempt

    @property
    def replay(self) -> DeadLetter | None:
        letter = self._inner.replay
        if letter is None or ROUTE_KEY not in letter.request:
            return letter
        request = {k: v for k, v in letter.request.items() if k != ROUTE_KEY}
        return dataclasses.replace(letter, request=request)

    @property
    def agent_sessions(self) -> AgentSessionAccess:
        return self._inner.agent_sessions

    @property
    def clock(self) -> Clock:
        return self._inner.clock

    @property
    def deadline_ms(self) -> int:
        return self._inner.deadline_ms

    @property
    def log(self) -> Any:
        return self._inner.log

    @property
    def tools(self) -> ToolCaller:
        return self._inner.tools

    @property
    def pending_confirmation(self) -> PendingConfirmation | None:
        return self._inner.pending_confirmation

    @property
    def confirmation(self) -> Mapping[str, Any] | None:
        return self._inner.confirmation

    async def request_confirmation(
        self, tool: str, args: Mapping[str, Any], prompt: str, ttl_ms: int | None = None
    ) -> ReplySegment:
        if ttl_ms is None:  # the turn's context has its own default
            return await self._inner.request_confirmation(tool, args, prompt)
        return await self._inner.request_confirmation(tool, args, prompt, ttl_ms)

    async def linked_identities(self) -> Mapping[str, str]:
        return await self._inner.linked_identities()

    async def ledger_entries(self) -> Sequence[LedgerEntry]:
        return await self._inner.ledger_entries()

    async def has_pending_messages(self) -> bool:
        return await self._inner.has_pending_messages()

    async def absorb(self) -> list[InboundMessage]:
        return [self._present(m) for m in await self._inner.absorb()]

    async def emit(self, name: str, data: Mapping[str, Any] | None = None) -> None:
        await self._inner.emit(name, data)

    async def draft(self, text: str) -> None:
        await self._inner.draft(text)

    async def step(self, name: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return await self._inner.step(name, fn, *args)

    async def enter_irreversible(self, force: bool = False) -> None:
        await self._inner.enter_irreversible(force)

    async def shielded(self, action: Awaitable[T]) -> T:
        return await self._inner.shielded(action)


def without_command(
    messages: Sequence[InboundMessage], command: str
) -> dict[MessageId, str | None]:
    """The rewrite that takes ``command`` off the turn's first text: the first message with
    text, when its text starts with the command (as typed)."""
    for message in messages:
        text = (message.text or "").strip()
        if not text:
            continue
        if text[: len(command)].casefold() != command.casefold():
            return {}
        return {message.message_id: text[len(command) :].strip() or None}
    return {}
