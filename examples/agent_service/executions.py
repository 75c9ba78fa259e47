"""Executions keyed by ``Idempotency-Key``: their runs, their streams, resume and supersede.

``Executions.open`` decides what a request with a key gets:

- a key whose execution ended (final event stored): its stored events after
  ``Last-Event-ID``, nothing runs;
- a key whose execution is running: the same run, followed (stored events after
  ``Last-Event-ID``, then live ones), by as many streams as ask;
- a key whose execution is open but not running (a disconnect cancelled it, a retryable
  error stopped it, the service restarted): a new run continuing it from its stored state;
- a new key: a new execution on the request's agent session (a new one when it names none).

Every event is stored before any stream sends it. When the last stream of a running
execution goes away before its final event, the run is cancelled (the model's stream is
closed with it); a side-effecting tool already started runs to its end first. A request
with ``supersedes`` cancels that execution and ends it with ``ERROR superseded``. An agent
session runs one execution at a time: another key on it is refused with 409 while one runs.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from acf.pipelines.agent_service.protocol import (
    FINAL,
    AgentEvent,
    ExecuteRequest,
    SideEffect,
    ToolStartData,
)

from .agent import Agent, Profile
from .conversation import Refused, opening_messages
from .runs import Run, Subscriber
from .store import ExecutionRow, NewSession, Store

log = logging.getLogger("agent_service")


@dataclass
class Opened:
    """What one request streams: a stored replay, or a run it follows."""

    session_id: str
    replay: list[tuple[int, AgentEvent]] = field(default_factory=list)
    run: Run | None = None
    subscriber: Subscriber | None = None
    _started: bool = field(default=False, init=False)

    async def events(
        self, is_disconnected: Callable[[], Awaitable[bool]]
    ) -> AsyncGenerator[tuple[int, AgentEvent], None]:
        """The events to send. The caller's iteration resumes only after it sent the last
        one, so that is when it counts as delivered; a side-effecting ``TOOL_START`` counts
        only if the client is still connected after it (else its tool never starts)."""
        run, subscriber = self.run, self.subscriber
        if run is None or subscriber is None:
            for entry in self.replay:
                yield entry
            return
        finished = False
        self._started = True
        try:
            async with aclosing(run.follow(subscriber)) as events:
                async for event_id, event in events:
                    yield event_id, event
                    side_effect = isinstance(event, ToolStartData) and (
                        event.side_effect is not SideEffect.NONE
                    )
                    if side_effect and await is_disconnected():
                        return
                    run.delivered(subscriber, event_id)
                    finished = event.type in FINAL
        finally:
            run.detach(subscriber, finished)

    async def close(self) -> None:
        """After the response: a stream that never started still lets go of its run."""
        if not self._started and self.run is not None and self.subscriber is not None:
            self.run.detach(self.subscriber, finished=False)


class Executions:
    """Every execution's runs in this process, over the store."""

    def __init__(self, store: Store, agent: Agent) -> None:
        self.store = store
        self.agent = agent
        self._runs: dict[str, Run] = {}
        self._lock = asyncio.Lock()

    async def open(self, profile: Profile, key: str, request: ExecuteRequest, after: int) -> Opened:
        """What a request with ``key`` streams (see the module); ``Refused`` when the
        service does not run it."""
        if request.supersedes is not None and request.supersedes != key:
            await self.supersede(request.supersedes)
            request = await self._corrected(request)
        while True:
            async with self._lock:
                opened, blocker = await self._open(profile, key, request, after)
                if opened is not None:
                    return opened
            assert blocker is not None
            await blocker.released.wait()  # a cancelled run finishing its tool

    async def _corrected(self, request: ExecuteRequest) -> ExecuteRequest:
        """A corrected answer (``supersedes`` + the same ``ask_id``) whose question the
        answer it replaces already took: the correction reaches the model as the
        customer's next message instead (the protocol: the service accepts it)."""
        if request.answer is None or request.agent_session_id is None:
            return request
        session = await self.store.session(request.agent_session_id)
        if session is None or session.pending_ask_id == request.answer.ask_id:
            return request
        text = f"(A correction of my answer) {request.message.text}"
        return request.model_copy(
            update={"answer": None, "message": request.message.model_copy(update={"text": text})}
        )

    async def supersede(self, old_key: str) -> None:
        """Cancel execution ``old_key`` and end it with ``ERROR superseded`` (unless it had
        ended); streams still following it get that event."""
        run = self._runs.get(old_key)
        if run is None:
            await self.store.supersede(old_key)
            return
        run.cancel(superseded=True)  # it stays registered until its ERROR is stored
        try:
            if run.task is not None:
                await asyncio.wait({run.task})
            ended = await self.store.supersede(old_key)
            if ended is not None:
                run.published(*ended)
        finally:
            run.superseding = False
            self._release(run)

    async def aclose(self) -> None:
        runs = list(self._runs.values())
        for run in runs:
            run.cancel()
        tasks = {run.task for run in runs if run.task is not None}
        if tasks:
            await asyncio.wait(tasks)

    async def _open(
        self, profile: Profile, key: str, request: ExecuteRequest, after: int
    ) -> tuple[Opened | None, Run | None]:
        run = self._runs.get(key)
        if run is not None:
            if run.cancelling:
                return None, run
            return Opened(run.session_id, run=run, subscriber=run.attach(after)), None
        row = await self.store.execution(key)
        if row is not None:
            if row.profile != profile.name:
                raise Refused(409, f"this Idempotency-Key was used with profile {row.profile!r}")
            if row.ended:
                replay = await self.store.events(key, after)
                return Opened(row.agent_session_id, replay=replay), None
            return await self._start(row, profile, after, resumed=True), None
        session = None
        if request.agent_session_id is not None:
            session = await self.store.session(request.agent_session_id)
            if session is None:
                raise Refused(404, f"no agent session {request.agent_session_id!r}")
            if session.profile != profile.name:
                raise Refused(409, f"agent session {session.id} runs profile {session.profile!r}")
            busy = next((r for r in self._runs.values() if r.session_id == session.id), None)
            if busy is not None:
                if busy.cancelling:
                    return None, busy
                raise Refused(409, f"agent session {session.id} is running another execution")
        transcript = [] if session is None else await self.store.transcript(session.id)
        messages = opening_messages(request, session, transcript)
        target = session or NewSession(
            profile.name, request.conversation_id, request.user_context.tenant
        )
        session_id, superseded = await self.store.begin(key, profile.name, target, messages)
        if superseded:
            log.info("execution %s supersedes the open executions %s", key, superseded)
        row = ExecutionRow(key, profile.name, session_id, ended=False, last_event_id=0)
        return await self._start(row, profile, after, resumed=False), None

    async def _start(
        self, row: ExecutionRow, profile: Profile, after: int, resumed: bool
    ) -> Opened:
        stored = await self.store.events(row.key) if resumed else []
        answered = await self.store.answer_so_far(row.key) if resumed else ""
        run = Run(self.store, row, profile, stored, answered)
        subscriber = run.attach(after)
        self._runs[row.key] = run
        run.start(self.agent, self._stopped)
        return Opened(row.agent_session_id, run=run, subscriber=subscriber)

    def _stopped(self, run: Run) -> None:
        if not run.superseding:
            self._release(run)

    def _release(self, run: Run) -> None:
        if self._runs.get(run.key) is run:
            del self._runs[run.key]
        run.released.set()
        run.signal.fire()
