"""The agent service's stream as the turn's effects (DESIGN §16, seed 004 Story 5).

Each non-final event of an execution (``execution.run_execution`` gives each once, in
order) becomes:

- ``THOUGHT``: the progress event ``agent_service.thought`` (its text cut to
  ``THOUGHT_CHARS``); the channel's typing indicator shows anyway while the turn runs;
- ``TOOL_START``: ``tool.started`` ``{tool, side_effect, status_text?, source}`` (the status
  text only when the agent shows tool status); the first side effect other than ``none``
  passes the turn's irreversible gate (``ctx.enter_irreversible(force=True)``): from then
  on a supersede never closes the stream, new messages wait for the next turn (QUEUE), and
  a commit refused for unseen messages, or a recovery, keeps that;
- ``TOOL_END``: ``tool.finished`` ``{tool, ok, summary?, source}`` and an entry of the tool
  log (``{at_ms, tool, args, outcome, summary}``: the history shows earlier turns' tool
  calls as notes);
- ``ANSWER_CHUNK``: the answer so far, as the turn's draft where the channel streams drafts
  (shaped as the reply will be); no event per chunk (each would be a write).

The first event naming the agent session (in its data or the stream's
``X-Agent-Session-Id``) is reported once through ``on_named``, so the row learns it before
the execution ends.
"""

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from acf.pipelines.agent_service.client import StreamedEvent
from acf.pipelines.agent_service.outcome import MAX_OFFSETS
from acf.pipelines.agent_service.protocol import (
    AnswerChunkData,
    SideEffect,
    ThoughtData,
    ToolEndData,
    ToolStartData,
)
from acf.pipelines.llm.messages import plain
from acf.pipelines.llm.shaping import strip_markdown
from acf.ports.pipeline import InDoubt, TurnContext

THOUGHT_CHARS = 200
SUMMARY_CHARS = 200
SOURCE = "agent_service"
OnNamed = Callable[[str], Awaitable[None]]


@dataclass(slots=True)
class _Started:
    args: dict[str, Any]
    side_effect: SideEffect


@dataclass(slots=True)
class EventProcessor:
    """Turns one execution's events into the turn's effects, and remembers what it saw."""

    ctx: TurnContext
    show_tool_status: bool
    on_named: OnNamed | None = None
    started_s: float = 0.0
    """The execution's start on the clock's monotonic reading (for ``offsets``)."""
    text: str = ""
    """The answer's chunks so far."""
    tool_log: list[dict[str, Any]] = field(default_factory=list)
    side_effect_started: bool = False
    """A tool with a side effect started: the execution must not be cut any more."""
    side_effect_done: bool = False
    """A tool with a side effect ended well."""
    agent_session_id: str | None = None
    offsets: list[tuple[str, int]] = field(default_factory=list)
    _running: dict[str, list[_Started]] = field(default_factory=dict)

    def start(self) -> None:
        self.started_s = self.ctx.clock.monotonic()

    def elapsed_ms(self) -> int:
        return round((self.ctx.clock.monotonic() - self.started_s) * 1000)

    def mark(self, event_type: str) -> None:
        """Record when an event of ``event_type`` came (the first ``MAX_OFFSETS``)."""
        if len(self.offsets) < MAX_OFFSETS:
            self.offsets.append((event_type, self.elapsed_ms()))

    async def on_event(self, streamed: StreamedEvent) -> None:
        event = streamed.event
        self.mark(event.type.value)
        await self._named(streamed.agent_session_id_header or event.agent_session_id)
        if isinstance(event, ThoughtData):
            text = event.text.strip()[:THOUGHT_CHARS]
            await self.ctx.emit("agent_service.thought", {"text": text})
        elif isinstance(event, ToolStartData):
            await self._tool_started(event)
        elif isinstance(event, ToolEndData):
            await self._tool_finished(event)
        elif isinstance(event, AnswerChunkData):
            self.text += event.text
            await self._draft()

    async def on_restart(self) -> None:
        """The service starts the execution again: its answer so far is void (the tools
        it ran did run, so the log and the side-effect marks stay)."""
        self.text = ""
        self._running.clear()

    async def _named(self, agent_session_id: str | None) -> None:
        if not agent_session_id or agent_session_id == self.agent_session_id:
            return
        self.agent_session_id = agent_session_id
        if self.on_named is not None:
            await self.on_named(agent_session_id)

    async def _tool_started(self, event: ToolStartData) -> None:
        started = _Started(dict(event.args), event.side_effect)
        self._running.setdefault(event.tool, []).append(started)
        if event.side_effect is not SideEffect.NONE and not self.side_effect_started:
            self.side_effect_started = True
            await self._past_the_gate()
        data: dict[str, Any] = {
            "tool": event.tool,
            "side_effect": event.side_effect.value,
            "source": SOURCE,
        }
        if self.show_tool_status and event.status_text:
            data["status_text"] = event.status_text
        await self.ctx.emit("tool.started", data)

    async def _past_the_gate(self) -> None:
        """The service started a tool with a side effect: the turn passes the irreversible
        gate (forced: new messages then wait for the next turn, audited), so the decision
        outlives this attempt. An earlier attempt that passed it already (a recovery: the
        same execution key, which the service deduplicates) leaves the turn marked."""
        with contextlib.suppress(InDoubt):  # marked before; the service runs it once per key
            await self.ctx.enter_irreversible(force=True)

    async def _tool_finished(self, event: ToolEndData) -> None:
        stack = self._running.get(event.tool) or []
        started = stack.pop(0) if stack else _Started({}, SideEffect.NONE)
        if event.ok and started.side_effect is not SideEffect.NONE:
            self.side_effect_done = True
        summary = (event.summary or "").strip()[:SUMMARY_CHARS] or None
        data: dict[str, Any] = {"tool": event.tool, "ok": event.ok, "source": SOURCE}
        if summary is not None:
            data["summary"] = summary
        self.tool_log.append(
            {
                "at_ms": self.ctx.clock.now_ms(),
                "tool": event.tool,
                "args": plain(started.args),
                "outcome": "ok" if event.ok else "failed",
                "summary": summary or "",
            }
        )
        await self.ctx.emit("tool.finished", data)

    async def _draft(self) -> None:
        capabilities = self.ctx.capabilities
        if not capabilities.streams_drafts or not self.text.strip():
            return
        shown = self.text if capabilities.markdown else strip_markdown(self.text)
        await self.ctx.draft(shown)
