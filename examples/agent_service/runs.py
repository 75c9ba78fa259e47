"""One run of an execution: the agent writes its events here (``agent.Journal``), each
stored before it is put in the run's log, and the streams that follow the run read that log.

A stream counts an event as delivered once it has sent it; a side-effecting tool waits for
that (``flushed``). When the last stream leaves before the final event, the run is
cancelled; a tool started under ``protect`` still runs to its end, and the run counts as
over only after it stored its result.
"""

import asyncio
import bisect
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from acf.pipelines.agent_service.protocol import (
    FINAL,
    AgentEvent,
    AgentSessionState,
    AnswerChunkData,
    AskUserData,
    CompleteData,
    ErrorData,
    ThoughtData,
    ToolEndData,
    ToolStartData,
)

from .agent import Agent, Profile
from .store import ExecutionRow, Message, Store

_T = TypeVar("_T")
log = logging.getLogger("agent_service")


class Signal:
    """Wakes every waiter at each ``fire``; take ``waiter()`` before checking the state."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        return self._event


@dataclass(eq=False)
class Subscriber:
    """One stream following a run: the last event id it was sent."""

    delivered: int
    connected: bool = True


class Run:
    """One run of an execution (the agent's ``Journal``): it stores each event, then puts
    it in its log for the streams that follow it. An execution has several runs when it is
    resumed after a disconnect, a retryable error or a restart."""

    def __init__(
        self,
        store: Store,
        row: ExecutionRow,
        profile: Profile,
        stored: list[tuple[int, AgentEvent]],
        answered: str,
    ) -> None:
        self.store = store
        self.row = row
        self.profile = profile
        self.log = stored
        self.streamed = "".join(e.text for _, e in stored if isinstance(e, AnswerChunkData))
        self.answered = answered
        self.subscribers: set[Subscriber] = set()
        self.signal = Signal()
        self.task: asyncio.Task[None] | None = None
        self.stopped = False
        self.cancelling = False
        self.superseding = False
        self.released = asyncio.Event()
        """Set once the run no longer stands for its key (a request may start another)."""
        self._last_id = row.last_event_id
        self._ended = False
        self._protected: set[asyncio.Future[Any]] = set()

    @property
    def key(self) -> str:
        return self.row.key

    @property
    def session_id(self) -> str:
        return self.row.agent_session_id

    def start(self, agent: Agent, on_stop: Callable[["Run"], None]) -> None:
        self.task = asyncio.create_task(self._run(agent, on_stop), name=f"execution {self.key}")

    def cancel(self, *, superseded: bool = False) -> None:
        self.superseding = self.superseding or superseded
        if self.task is not None and not self.task.done():
            self.cancelling = True
            self.task.cancel()

    def attach(self, after: int) -> Subscriber:
        subscriber = Subscriber(after)
        self.subscribers.add(subscriber)
        return subscriber

    def detach(self, subscriber: Subscriber, finished: bool) -> None:
        """A stream ended; the last one gone before the final event cancels the run."""
        subscriber.connected = False
        self.subscribers.discard(subscriber)
        self.signal.fire()
        if not finished and not self.subscribers and not self.stopped:
            log.info("execution %s: client gone, cancelling", self.key)
            self.cancel()

    def delivered(self, subscriber: Subscriber, event_id: int) -> None:
        subscriber.delivered = event_id
        self.signal.fire()

    async def follow(self, subscriber: Subscriber) -> AsyncGenerator[tuple[int, AgentEvent], None]:
        """The log after the subscriber's last event, then each new event, up to a final one
        (or the run's end)."""
        cursor = subscriber.delivered
        while True:
            waiter = self.signal.waiter()
            start = bisect.bisect_right(self.log, cursor, key=lambda entry: entry[0])
            for event_id, event in self.log[start:]:
                cursor = event_id
                yield event_id, event
                if event.type in FINAL:
                    return
            if self.stopped and not self.superseding:
                return
            await waiter.wait()

    def published(self, event_id: int, event: AgentEvent) -> None:
        self.log.append((event_id, event))
        self.signal.fire()

    # The Journal the agent writes to.

    async def chunk(self, text: str) -> None:
        event = AnswerChunkData(agent_session_id=self.session_id, text=text)
        event_id = self._take_id()
        await self.store.add_event(self.key, event_id, event)
        self.streamed += text
        self.published(event_id, event)

    async def thought(self, text: str) -> None:
        event = ThoughtData(agent_session_id=self.session_id, text=text)
        event_id = self._take_id()
        await self.store.add_event(self.key, event_id, event)
        self.published(event_id, event)

    async def message(self, message: Message) -> None:
        await self.store.add_message(self.session_id, self.key, message)
        if message["role"] == "assistant":
            self.answered += message.get("content") or ""

    async def start_tool(self, call_id: str, event: ToolStartData) -> int:
        event_id = self._take_id()
        await self.store.start_tool(self.key, call_id, event.tool, event_id, event)
        self.published(event_id, event)
        return event_id

    async def flushed(self, event_id: int) -> None:
        while True:
            waiter = self.signal.waiter()
            if any(s.connected and s.delivered >= event_id for s in self.subscribers):
                return
            await waiter.wait()  # the last stream leaving cancels the run

    async def finish_tool(self, event: ToolEndData, result: Message) -> None:
        event_id = self._take_id()
        await self.store.finish_tool(self.session_id, self.key, event_id, event, result)
        self.published(event_id, event)

    async def end(
        self,
        event: CompleteData | AskUserData | ErrorData,
        status: AgentSessionState,
        pending: tuple[str, str] | None = None,
    ) -> None:
        event_id = self._take_id()
        await self.store.end(self.key, event_id, event, status, pending)
        self._ended = True
        self.published(event_id, event)

    async def fail_retryable(self, event: ErrorData) -> None:
        event_id = self._take_id()
        await self.store.skip_event_id(self.key, event_id)
        self._ended = True  # this run's end: the execution stays open
        self.published(event_id, event)

    def protect(self, work: Awaitable[_T]) -> Awaitable[_T]:
        future = asyncio.ensure_future(work)
        self._protected.add(future)
        future.add_done_callback(self._protected.discard)
        return asyncio.shield(future)

    def _take_id(self) -> int:
        self._last_id += 1
        return self._last_id

    async def _run(self, agent: Agent, on_stop: Callable[["Run"], None]) -> None:
        try:
            await agent.run(self, self.profile)
        except asyncio.CancelledError:
            log.info("execution %s cancelled", self.key)
            raise
        except Exception:
            log.exception("execution %s failed", self.key)
            await self._fail()
        finally:
            # A side-effecting tool ends and stores its result before the run counts as over.
            for outcome in await asyncio.gather(*self._protected, return_exceptions=True):
                if isinstance(outcome, Exception):
                    log.error("execution %s: a tool failed", self.key, exc_info=outcome)
            self.stopped = True
            self.signal.fire()
            on_stop(self)

    async def _fail(self) -> None:
        if self._ended:
            return
        error = ErrorData(
            agent_session_id=self.session_id,
            code="internal_error",
            message="the agent failed; the service's log says why",
        )
        try:
            await self.end(error, AgentSessionState.FAILED)
        except Exception:  # the store too: streams end without a final event (a cut)
            log.exception("execution %s: the failure could not be recorded", self.key)
