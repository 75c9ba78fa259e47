"""``run_execution``: one execution of the agent service, from its first request to its
final event, across retries and resumed streams (seed 004 Stories 1, 5 and 7).

Every request of the execution carries the same ``Idempotency-Key`` and the same body, so
the service can deduplicate. A request is sent only when the endpoint's circuit breaker
allows it; a failed one is retried as ``failures.retry_plan`` says, after
``failures.retry_delay_s`` on the turn's clock, never past ``deadline_ms``: the execution
then fails with its last failure (``ExecutionFailed``).

Once an event has arrived, every later request carries ``Last-Event-ID``, the last new
event's id: after a cut stream it resumes (and counts in ``resumes``). Events whose id was
seen already are skipped, so ``on_event`` gets each event once, in order, whatever the
service replays. A retryable ``ERROR`` event ends the service's run of the execution but
not the execution: the retry sends ``Last-Event-ID`` = the ``ERROR``'s id, for the service
to run it again with later ids (the protocol: a key whose run ended in a retryable
``ERROR`` is run again by a request that has seen that ``ERROR``); when events were
already given to ``on_event``, ``on_restart`` is awaited first: what they streamed is
void, the new run's events come after.

The breaker hears of every request it let through before anything else is awaited: a
final event is a success, a failure of the endpoint (``failures.trips_breaker``) a
failure, any other failure (a 4xx, a 429) a sign of life, and a request that ends without
an outcome (cancelled, or ``on_event`` raised) is abandoned, so a half-open circuit's probe
is never left taken. A cancellation closes the stream (the service sees the disconnect)
and propagates.
"""

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from acf.pipelines.agent_service.client import AgentServiceClient, StreamedEvent
from acf.pipelines.agent_service.failures import (
    CallFailed,
    FailureKind,
    retry_delay_s,
    retry_plan,
    trips_breaker,
)
from acf.pipelines.agent_service.protocol import (
    AnswerChunkData,
    AskUserData,
    CompleteData,
    ErrorData,
    ExecuteRequest,
)
from acf.pipelines.llm.breaker import CircuitBreaker, CircuitState
from acf.ports.clock import Clock

FinalEvent = AskUserData | CompleteData | ErrorData
OnStreamedEvent = Callable[[StreamedEvent], Awaitable[None]]
OnRestart = Callable[[], Awaitable[None]]
OnCircuit = Callable[[CircuitState], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """How an execution ended: ``ASK_USER``, ``COMPLETE`` or a non-retryable ``ERROR``."""

    final: FinalEvent
    agent_session_id: str
    attempts: int
    """Requests sent, the first included."""
    resumes: int
    """Requests sent with ``Last-Event-ID``."""
    first_event_ms: int | None
    """From the start to the first event, on the clock's monotonic reading."""
    first_chunk_ms: int | None
    """From the start to the first ``ANSWER_CHUNK``."""
    duration_ms: int


class ExecutionFailed(Exception):
    """The execution failed for good: ``kind`` and ``message`` of its last failure (the
    message safe to show an operator), after ``attempts`` requests."""

    def __init__(
        self, kind: FailureKind, message: str, attempts: int, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.attempts = attempts
        self.status = status

    def __repr__(self) -> str:
        return f"ExecutionFailed({self.kind.value}, {self.message!r}, attempts={self.attempts})"


@dataclass
class _Execution:
    """One execution across its requests: what is fixed, and what its requests saw."""

    client: AgentServiceClient
    profile: str
    request: ExecuteRequest
    key: str
    traceparent: str | None
    clock: Clock
    deadline_ms: int
    retries: int
    breaker: CircuitBreaker
    on_event: OnStreamedEvent
    on_restart: OnRestart | None
    on_circuit: OnCircuit | None
    started: float = 0.0
    seen: set[str] = field(default_factory=set)
    last_id: str | None = None
    attempts: int = 0
    resumes: int = 0
    server_errors: int = 0
    rerun_from: str | None = None
    """The id of the retryable ``ERROR`` the next request asks the service to run after."""
    delivered: bool = False
    """Events went to ``on_event`` since the start or the last restart."""
    first_event_ms: int | None = None
    first_chunk_ms: int | None = None

    async def run(self) -> ExecutionResult:
        self.started = self.clock.monotonic()
        last: CallFailed | None = None
        while True:
            await self._may_send(last)
            self.attempts += 1
            if self.last_id is not None and self.last_id != self.rerun_from:
                self.resumes += 1
            try:
                final = await self._request()
            except CallFailed as failed:
                last = failed
            else:
                if not (isinstance(final, ErrorData) and final.retryable):
                    return ExecutionResult(
                        final=final,
                        agent_session_id=final.agent_session_id,
                        attempts=self.attempts,
                        resumes=self.resumes,
                        first_event_ms=self.first_event_ms,
                        first_chunk_ms=self.first_chunk_ms,
                        duration_ms=self._elapsed_ms(),
                    )
                said = self.client.redact(f"ERROR {final.code}: {final.message}")
                last = CallFailed(FailureKind.AGENT_ERROR, said, retryable=True)
            await self._before_retry(last)

    async def _may_send(self, last: CallFailed | None) -> None:
        """Return when a request may be sent now; else raise ``ExecutionFailed``."""
        now = self.clock.now_ms()
        if now >= self.deadline_ms:
            if last is not None:
                raise self._failed(last, "the deadline was reached")
            said = "the deadline was reached before the first request"
            raise ExecutionFailed(FailureKind.STREAM_TIMEOUT, said, self.attempts)
        allowed, changed = self.breaker.allow(now)
        await self._circuit(changed)
        if not allowed:
            said = f"circuit open at {self.client.endpoint}"
            if last is not None:
                said += f" after: {last.message}"
            status = None if last is None else last.status
            raise ExecutionFailed(FailureKind.UNAVAILABLE, said, self.attempts, status)

    async def _before_retry(self, failed: CallFailed) -> None:
        """Wait before retrying after ``failed``, or raise ``ExecutionFailed`` when it is
        not retried."""
        if failed.kind is FailureKind.SERVER_ERROR:
            self.server_errors += 1
        plan = retry_plan(
            failed.kind, failed.retryable, self.attempts, self.server_errors, retries=self.retries
        )
        if not plan:
            raise self._failed(failed, f"given up after {self.attempts} request(s)")
        now = self.clock.now_ms()
        if self.breaker.state(now) is CircuitState.OPEN:
            raise self._failed(failed, "the circuit opened")
        delay = retry_delay_s(failed, self.attempts, now, self.deadline_ms)
        if delay is None:
            raise self._failed(failed, "no time left to retry before the deadline")
        if failed.kind is FailureKind.AGENT_ERROR:
            self.rerun_from = self.last_id
            if self.delivered and self.on_restart is not None:
                await self.on_restart()
            self.delivered = False
        await self.clock.sleep(delay)

    async def _request(self) -> FinalEvent:
        """One request the breaker let through: its final event, or ``CallFailed``. Its
        outcome goes to the breaker before anything else is awaited; whatever escapes
        before that abandons it."""
        settled = False
        try:
            try:
                final = await self._stream()
            except CallFailed as failed:
                now = self.clock.now_ms()
                if trips_breaker(failed):
                    changed = self.breaker.record_failure(now)
                else:
                    changed = self.breaker.record_success(now)  # the endpoint answered
                settled = True
                await self._circuit(changed)
                raise
            changed = self.breaker.record_success(self.clock.now_ms())
            settled = True
            await self._circuit(changed)
            return final
        except BaseException:
            if not settled:
                self.breaker.record_abandoned()
            raise

    async def _stream(self) -> FinalEvent:
        """The request's events to ``on_event`` (new ones only), until its final one."""
        events = self.client.stream(
            self.profile,
            self.request,
            key=self.key,
            last_event_id=self.last_id,
            traceparent=self.traceparent,
            within_s=(self.deadline_ms - self.clock.now_ms()) / 1000,
        )
        async with contextlib.aclosing(events):
            async for streamed in events:
                event = streamed.event
                if self.first_event_ms is None:
                    self.first_event_ms = self._elapsed_ms()
                if streamed.id in self.seen:
                    continue  # replayed by the service: handled already
                self.seen.add(streamed.id)
                self.last_id = streamed.id
                if isinstance(event, (AskUserData, CompleteData, ErrorData)):
                    return event
                if isinstance(event, AnswerChunkData) and self.first_chunk_ms is None:
                    self.first_chunk_ms = self._elapsed_ms()
                self.delivered = True
                await self.on_event(streamed)
        raise CallFailed(FailureKind.CUT, "the stream ended before a final event")

    def _elapsed_ms(self) -> int:
        return round((self.clock.monotonic() - self.started) * 1000)

    def _failed(self, failed: CallFailed, why: str) -> ExecutionFailed:
        message = f"{failed.message} ({why})"
        return ExecutionFailed(failed.kind, message, self.attempts, failed.status)

    async def _circuit(self, state: CircuitState | None) -> None:
        if state is not None and self.on_circuit is not None:
            await self.on_circuit(state)


async def run_execution(
    client: AgentServiceClient,
    profile: str,
    request: ExecuteRequest,
    *,
    key: str,
    supersedes: str | None,
    clock: Clock,
    deadline_ms: int,
    retries: int,
    breaker: CircuitBreaker,
    on_event: OnStreamedEvent,
    traceparent: str | None,
    on_restart: OnRestart | None = None,
    on_circuit: OnCircuit | None = None,
) -> ExecutionResult:
    """Run the execution ``key`` of ``request`` (which ``supersedes``, when given, replaces
    the execution of that key) at ``profile`` until its final event. Non-final events go to
    ``on_event``; state changes of ``breaker`` to ``on_circuit``. Raises
    ``ExecutionFailed``; a cancellation propagates once the stream is closed."""
    if supersedes is not None:
        request = request.model_copy(update={"supersedes": supersedes})
    execution = _Execution(
        client,
        profile,
        request,
        key,
        traceparent,
        clock,
        deadline_ms,
        retries,
        breaker,
        on_event,
        on_restart,
        on_circuit,
    )
    return await execution.run()
