"""One execution of ``FakeAgentService``: its event log and the task that runs its script.

An execution is keyed by the request's ``Idempotency-Key``. Its run writes events to the
execution's log (ids 1, 2, … in script order); connections read the log, so several
connections, one after another (a resume after a cut) or at once, see the same events
with the same ids. A run that was cancelled (the client disconnected, a newer execution
superseded it) can run again under the same key: the script is the same, so it writes the
same events with the same ids (those already logged are not logged twice), and a tool that
started under the key is not started again (its ``TOOL_START``/``TOOL_END`` are written
from the script without running it). A run that ended in a retryable ``ERROR`` runs again
when a request with that key has seen the ``ERROR`` (``Last-Event-ID``): from the step
after it, with ids after it. ``pump`` streams the log to one connection.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiohttp import web

from acf.pipelines.agent_service.protocol import (
    FINAL,
    AgentEvent,
    AnswerChunkData,
    AskUserData,
    CompleteData,
    ErrorData,
    ExecuteRequest,
    SideEffect,
    ThoughtData,
    ToolEndData,
    ToolStartData,
    event_data,
)
from acf.testing.fake_agent_steps import (
    Ask,
    Chunks,
    Complete,
    Cut,
    Error,
    Reject,
    Sleep,
    Step,
    Think,
    Tool,
)


class ToolRun(NamedTuple):
    """A tool the fake service started (compares equal to a plain tuple)."""

    key: str
    tool: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SentEvent:
    id: int
    event: AgentEvent


@dataclass(frozen=True, slots=True)
class Pacing:
    """Server-wide delays of a run: before its first event, and before each later one."""

    first_event_s: float = 0.0
    event_gap_s: float = 0.0


class Signal:
    """Wakes every waiter at each ``fire``. Take ``waiter()`` before checking the state
    it guards, then wait on it: a change in between is never missed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        return self._event


@dataclass(eq=False)
class Connection:
    """One HTTP response streaming an execution's log."""

    is_open: Callable[[], bool]
    """Whether the connection's transport is still open."""
    written: int
    """The id of the last event written (or the request's ``Last-Event-ID``)."""
    cuts_seen: int
    """Cuts logged before it connected, which do not apply to it."""
    dropped: bool = False
    """The server dropped it (a ``Cut``, or a run that ended without a final event)."""


@dataclass(eq=False)
class Execution:
    """The record of one execution key, updated as it runs."""

    key: str
    number: int
    profile: str
    request: ExecuteRequest
    """The body of the request that created it."""
    agent_session_id: str
    steps: tuple[Step, ...]
    supersedes: str | None = None
    superseded_by: str | None = None
    events: list[SentEvent] = field(default_factory=list)
    """The log: every event written, in id order."""
    final: AgentEvent | None = None
    tool_runs: list[ToolRun] = field(default_factory=list)
    requests: int = 0
    """Requests that carried its key (rejected ones included)."""
    runs: int = 0
    cancelled: bool = False
    """A run of it was cancelled (client disconnect or supersede)."""
    finished: bool = False
    """A run reached the end of the script (a final event or the last step)."""
    crash: BaseException | None = None
    """What a run raised (a bug in a script), if anything."""
    cuts: list[int] = field(default_factory=list)
    """For each cut, the id of the last event before it."""
    connections: list[Connection] = field(default_factory=list)
    signal: Signal = field(default_factory=Signal, repr=False)
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    resume_step: int = 0
    """The step a run starts at: after a retryable ``ERROR``, the one after it."""
    resume_id: int = 0
    """The id a run's first event follows: after a retryable ``ERROR``, that ``ERROR``'s."""
    _tools_started: set[int] = field(default_factory=set, repr=False)
    _cuts_done: set[int] = field(default_factory=set, repr=False)

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def rejection(self) -> Reject | None:
        """The ``Reject`` answering its latest request, if any."""
        rejects = [s for s in self.steps if isinstance(s, Reject) for _ in range(s.times)]
        return rejects[self.requests - 1] if self.requests <= len(rejects) else None

    def retry_after_error(self, after: int) -> bool:
        """Whether a request that saw event ``after`` runs the execution again: its run
        ended in a retryable ``ERROR`` with that id. The next run goes on after the
        ``ERROR``'s step (the failure was passing), its events after the ``ERROR``'s id."""
        final = self.final
        if self.running or not isinstance(final, ErrorData) or not final.retryable:
            return False
        if not self.events or after < self.events[-1].id:
            return False
        self.resume_id = self.events[-1].id
        self.final = None
        self.finished = False
        return True

    def cancel(self) -> None:
        """Cancel the running run (recorded); nothing when none runs."""
        if self.task is not None and not self.task.done():
            self.cancelled = True
            self.task.cancel()

    async def wait_ended(self) -> None:
        """Wait until no run of it is running."""
        while True:
            waiter = self.signal.waiter()
            if not self.running:
                return
            await waiter.wait()


def start(
    execution: Execution,
    pacing: Pacing,
    tool_runs: list[ToolRun],
    on_final: Callable[[Execution, AgentEvent], None],
) -> None:
    """Start a run of ``execution`` (it must not be running)."""
    execution.runs += 1
    execution.finished = False
    run = _Run(execution, pacing, tool_runs, on_final)
    execution.task = asyncio.create_task(run.run(), name=f"fake-agent-{execution.key}")
    execution.task.add_done_callback(lambda task: _ended(execution, task))


def _ended(execution: Execution, task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        execution.crash = task.exception()
    execution.signal.fire()


async def pump(
    response: web.StreamResponse,
    execution: Execution,
    connection: Connection,
    heartbeat_s: float,
) -> None:
    """Write the log to ``response`` until a final event, a cut or the run's end."""
    while True:
        waiter = execution.signal.waiter()
        if any(cut <= connection.written for cut in execution.cuts[connection.cuts_seen :]):
            connection.dropped = True
            return
        if connection.written < len(execution.events):
            sent = execution.events[connection.written]
            await response.write(_sse(sent))
            connection.written = sent.id
            execution.signal.fire()
            if sent.event.type in FINAL:
                await response.write_eof()
                return
            continue
        if not execution.running:
            if execution.finished:  # a script without a final step: a clean end
                await response.write_eof()
            else:
                connection.dropped = True
            return
        try:
            await asyncio.wait_for(waiter.wait(), heartbeat_s)
        except TimeoutError:
            await response.write(b": keepalive\n\n")


def _sse(sent: SentEvent) -> bytes:
    name = sent.event.type.value
    return f"id: {sent.id}\nevent: {name}\ndata: {event_data(sent.event)}\n\n".encode()


class _Run:
    def __init__(
        self,
        execution: Execution,
        pacing: Pacing,
        tool_runs: list[ToolRun],
        on_final: Callable[[Execution, AgentEvent], None],
    ) -> None:
        self.ex = execution
        self.pacing = pacing
        self.tool_runs = tool_runs
        self.on_final = on_final
        self.cursor = execution.resume_id
        self.answer: list[str] = []

    async def run(self) -> None:
        sid = self.ex.agent_session_id
        for index, step in enumerate(self.ex.steps):
            if index < self.ex.resume_step:
                continue
            final: AgentEvent | None = None
            match step:
                case Think(text):
                    await self.emit(ThoughtData(agent_session_id=sid, text=text))
                case Tool():
                    if not await self.tool(index, step):
                        return
                case Chunks():
                    await self.chunks(step)
                case Complete(answer):
                    text = "".join(self.answer) if answer is None else answer
                    final = CompleteData(agent_session_id=sid, answer=text)
                case Ask(question, options, ask_id):
                    final = AskUserData(
                        agent_session_id=sid,
                        ask_id=ask_id or f"ask-{self.ex.number}-{index}",
                        question=question,
                        options=None if options is None else list(options),
                    )
                case Error(code, message, retryable):
                    final = ErrorData(
                        agent_session_id=sid, code=code, message=message, retryable=retryable
                    )
                    if retryable:
                        self.ex.resume_step = index + 1
                case Sleep(seconds):
                    await asyncio.sleep(seconds)
                case Cut():
                    if index not in self.ex._cuts_done:
                        self.ex._cuts_done.add(index)
                        self.ex.cuts.append(self.cursor)
                        self.ex.signal.fire()
                case Reject():
                    pass  # answered before the run (Execution.rejection)
            if final is not None:
                await self.emit(final)
                break
        self.ex.finished = True

    async def emit(self, event: AgentEvent) -> int:
        """Log ``event`` under the next id (unless a former run logged it); its id."""
        self.cursor += 1
        if self.cursor > len(self.ex.events):
            delay = self.pacing.first_event_s if self.cursor == 1 else self.pacing.event_gap_s
            if delay > 0:
                await asyncio.sleep(delay)
            if event.type in FINAL:
                self.ex.final = event
                self.on_final(self.ex, event)
            self.ex.events.append(SentEvent(self.cursor, event))
            self.ex.signal.fire()
        return self.cursor

    async def chunks(self, step: Chunks) -> None:
        for number, piece in enumerate(step.pieces()):
            if number and step.interval_s > 0:
                await asyncio.sleep(step.interval_s)
            self.answer.append(piece)
            await self.emit(AnswerChunkData(agent_session_id=self.ex.agent_session_id, text=piece))

    async def tool(self, index: int, step: Tool) -> bool:
        """Run ``step``'s tool; False when the client is gone before a side effect."""
        sid = self.ex.agent_session_id
        side_effect = SideEffect(step.side_effect)
        started = await self.emit(
            ToolStartData(
                agent_session_id=sid,
                tool=step.name,
                args=dict(step.args),
                status_text=step.status_text,
                side_effect=side_effect,
            )
        )
        if index not in self.ex._tools_started:
            if side_effect is not SideEffect.NONE and not await self.client_still_there(started):
                self.ex.cancelled = True
                return False
            self.ex._tools_started.add(index)
            record = ToolRun(self.ex.key, step.name, dict(step.args))
            self.ex.tool_runs.append(record)
            self.tool_runs.append(record)
            if step.seconds > 0:
                await asyncio.sleep(step.seconds)
        end = ToolEndData(agent_session_id=sid, tool=step.name, ok=step.ok, summary=step.summary)
        await self.emit(end)
        return True

    async def client_still_there(self, event_id: int) -> bool:
        """Wait until every connection wrote event ``event_id`` (or closed); then whether
        none of them was closed by the client."""
        while True:
            waiter = self.ex.signal.waiter()
            pending = [c for c in self.ex.connections if c.written < event_id and c.is_open()]
            if not pending:
                break
            await waiter.wait()
        await asyncio.sleep(0)  # let a disconnect that already arrived be processed
        return all(c.dropped or c.is_open() for c in self.ex.connections)
