"""``FakeAgentService``: an agent service speaking acf's protocol (DESIGN §16) on loopback,
for tests and benchmarks that must not run a real agent.

Real HTTP (aiohttp's server) on ``127.0.0.1`` and a free port, in the running event loop::

    async with FakeAgentService(api_key="k") as svc:
        svc.enqueue([Think("Looking"), Tool("track", {"id": "P1"}), Chunks("On its way."),
                     Complete()])
        client = AgentServiceClient(svc.base_url, "k", timeouts)

``POST /v1/agents/{profile}/execute`` takes an ``ExecuteRequest`` and answers
``text/event-stream`` (header ``X-Agent-Session-Id``; events ``id: N``, ``event: TYPE``,
``data: {...}``; a ``: keepalive`` comment every ``heartbeat_s`` of silence). A new
execution key (``Idempotency-Key``) takes the next ``enqueue``\\ d script, else asks the
``script`` responder, else echoes (``You said: <text>`` in 3 chunks, then ``COMPLETE``);
see ``acf.testing.fake_agent_steps`` for the steps. A request with a known key streams
that execution's events after its ``Last-Event-ID`` (from the start without one) and
re-runs it if it was cancelled; a client disconnect cancels a running execution unless
another connection still reads it; ``supersedes`` cancels the execution it names.

Errors are JSON ``{"error": ...}``: 503 while ``set_down(True)``; 401 when ``api_key`` is
set and ``X-API-Key`` differs; 400 for a body that is not an ``ExecuteRequest``, a missing
``Idempotency-Key`` or a bad ``Last-Event-ID``; 404 for an unknown ``agent_session_id``;
409 for an ``answer`` that is not the session's pending ask; a ``Reject`` step's status.

Agent sessions (``as-1``, ``as-2``, … when the request names none) are ACTIVE while an
execution runs, AWAITING_USER after an ``ASK_USER``, COMPLETED after ``COMPLETE``, FAILED
after ``ERROR``; ``GET /v1/sessions/{id}`` answers their ``SessionStatusBody``. ``GET
/health`` answers ``HealthBody`` (503 when ``set_health("down")``).

Records: ``requests`` (every execute request whose body parsed, with the status it got),
``executions`` by key, ``tool_runs`` (every tool started, as ``(key, tool, args)``).
"""

import asyncio
import hmac
import itertools
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

from aiohttp import web
from pydantic import ValidationError

from acf.pipelines.agent_service.protocol import (
    API_KEY_HEADER,
    EXECUTE_PATH,
    HEALTH_PATH,
    KEY_HEADER,
    LAST_EVENT_HEADER,
    SESSION_HEADER,
    SESSION_PATH,
    AgentEvent,
    AgentSessionState,
    AskUserData,
    CompleteData,
    ExecuteRequest,
    HealthBody,
    SessionStatusBody,
)
from acf.testing.fake_agent_service_execution import (
    Connection,
    Execution,
    Pacing,
    Signal,
    ToolRun,
    pump,
    start,
)
from acf.testing.fake_agent_steps import Responder, Step, echo
from acf.testing.loopback_server import serve

HealthStatus = Literal["ok", "degraded", "down"]


@dataclass(eq=False)
class RecordedRequest:
    """One execute request the fake service received."""

    profile: str
    headers: dict[str, str] = field(repr=False)
    """Lower-cased names; left out of the repr, so a failed assertion never prints a key."""
    body: ExecuteRequest
    key: str | None
    last_event_id: str | None
    at: float
    """``time.monotonic()`` when it arrived."""
    status: int = 200
    """The HTTP status it was answered."""


@dataclass(eq=False)
class FakeAgentSession:
    agent_session_id: str
    profile: str
    status: AgentSessionState = AgentSessionState.ACTIVE
    pending_ask_id: str | None = None


class FakeAgentService:
    """The fake service; ``base_url`` (without ``/v1``) once started."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        heartbeat_s: float = 15.0,
        first_event_s: float = 0.0,
        event_gap_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        record_requests: bool = True,
    ) -> None:
        """``first_event_s`` is waited before the first event of every run and
        ``event_gap_s`` before each later one (on top of the steps' own waits);
        ``record_requests=False`` keeps ``requests`` empty (a long benchmark)."""
        if heartbeat_s <= 0 or first_event_s < 0 or event_gap_s < 0:
            raise ValueError("heartbeat_s must be > 0 and the delays >= 0")
        self.api_key = api_key
        self.heartbeat_s = heartbeat_s
        self.pacing = Pacing(first_event_s, event_gap_s)
        self.host = host
        self.port = port
        self.record_requests = record_requests
        self.requests: list[RecordedRequest] = []
        self.executions: dict[str, Execution] = {}
        self.sessions: dict[str, FakeAgentSession] = {}
        self.tool_runs: list[ToolRun] = []
        self.health: HealthStatus = "ok"
        self.down = False
        self._responder: Responder = echo
        self._queue: deque[tuple[Step, ...]] = deque()
        self._session_numbers = itertools.count(1)
        self._execution_numbers = itertools.count(1)
        self._arrived = Signal()
        self._runner: web.AppRunner | None = None
        self._closing = False

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the fake agent service is not started")
        return f"http://{self.host}:{self.port}"

    def script(self, responder: Responder) -> None:
        """Choose the steps of new executions (after the ``enqueue``\\ d ones)."""
        self._responder = responder

    def enqueue(self, steps: Sequence[Step]) -> None:
        """The steps of the next new execution (first in, first out)."""
        self._queue.append(tuple(steps))

    def set_health(self, status: HealthStatus) -> None:
        self.health = status

    def set_down(self, down: bool = True) -> None:
        """While down, every execute request is answered 503 (``/health`` is apart)."""
        self.down = down

    def session(self, agent_session_id: str) -> FakeAgentSession:
        return self.sessions[agent_session_id]

    async def wait_for_requests(self, count: int) -> list[RecordedRequest]:
        """Wait until ``count`` execute requests have been recorded."""
        while True:
            waiter = self._arrived.waiter()
            if len(self.requests) >= count:
                return self.requests
            await waiter.wait()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(EXECUTE_PATH, self._execute)
        app.router.add_get(SESSION_PATH, self._session)
        app.router.add_get(HEALTH_PATH, self._health)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner, self.port = await serve(app, self.host, self.port)

    async def aclose(self) -> None:
        """Stop serving; running executions are cancelled (not recorded as cancelled)."""
        runner, self._runner = self._runner, None
        self._closing = True
        tasks = [e.task for e in self.executions.values() if e.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _execute(self, request: web.Request) -> web.StreamResponse:
        try:
            body: ExecuteRequest | None = ExecuteRequest.model_validate_json(await request.read())
            invalid = ""
        except ValidationError as exc:
            body = None
            fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
            invalid = f"invalid or missing {', '.join(fields)}"[:200]
        key = request.headers.get(KEY_HEADER)
        last = request.headers.get(LAST_EVENT_HEADER)
        record = None
        if body is not None and self.record_requests:
            record = RecordedRequest(
                profile=request.match_info["profile"],
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                key=key,
                last_event_id=last,
                at=time.monotonic(),
            )
            self.requests.append(record)
            self._arrived.fire()
        if self.down:
            return self._refuse(record, 503, "the agent service is down")
        if not self._authorized(request):
            return self._refuse(record, 401, "missing or wrong X-API-Key")
        if body is None:
            return self._refuse(record, 400, invalid)
        if not key:
            return self._refuse(record, 400, f"the {KEY_HEADER} header is required")
        if last is not None and not (last.isascii() and last.isdigit()):
            return self._refuse(record, 400, f"{LAST_EVENT_HEADER} must be an event id")
        execution = self.executions.get(key)
        if execution is None:
            refusal = self._check_session(body)
            if refusal is not None:
                return self._refuse(record, *refusal)
            execution = self._create(key, request.match_info["profile"], body)
        execution.requests += 1
        reject = execution.rejection()
        if reject is not None:
            headers = {}
            if reject.retry_after_s is not None:
                headers["Retry-After"] = f"{reject.retry_after_s:g}"
            return self._refuse(record, reject.status, reject.message, headers)
        return await self._stream(request, execution, int(last or 0))

    def _refuse(
        self,
        record: RecordedRequest | None,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        if record is not None:
            record.status = status
        return web.json_response({"error": message}, status=status, headers=headers)

    def _authorized(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        given = request.headers.get(API_KEY_HEADER, "")
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    def _check_session(self, body: ExecuteRequest) -> tuple[int, str] | None:
        """Why a new execution of ``body`` is refused (status, message), or None."""
        known = self.sessions.get(body.agent_session_id or "")
        if body.agent_session_id is not None and known is None:
            return 404, "unknown agent session"
        if body.answer is None:
            return None
        old = self.executions.get(body.supersedes or "")
        if (
            old is not None
            and old.request.answer is not None
            and old.request.answer.ask_id == body.answer.ask_id
        ):
            return None  # a corrected answer replaces the one it supersedes (seen or not)
        if known is None or known.pending_ask_id is None:
            return 409, "no question is pending in this agent session"
        if known.pending_ask_id != body.answer.ask_id:
            return 409, "the answer is not to the pending question"
        return None

    def _create(self, key: str, profile: str, body: ExecuteRequest) -> Execution:
        session = self.sessions.get(body.agent_session_id or "")
        if session is None:
            session = FakeAgentSession(f"as-{next(self._session_numbers)}", profile)
            self.sessions[session.agent_session_id] = session
        session.pending_ask_id = None
        steps = self._queue.popleft() if self._queue else tuple(self._responder(body, profile))
        execution = Execution(
            key=key,
            number=next(self._execution_numbers),
            profile=profile,
            request=body,
            agent_session_id=session.agent_session_id,
            steps=steps,
            supersedes=body.supersedes,
        )
        old = self.executions.get(body.supersedes or "")
        if old is not None:
            old.superseded_by = key
            old.cancel()
        self.executions[key] = execution
        return execution

    def _on_final(self, execution: Execution, event: AgentEvent) -> None:
        session = self.sessions[execution.agent_session_id]
        if isinstance(event, AskUserData):
            session.status = AgentSessionState.AWAITING_USER
            session.pending_ask_id = event.ask_id
        elif isinstance(event, CompleteData):
            session.status = AgentSessionState.COMPLETED
        else:
            session.status = AgentSessionState.FAILED

    async def _stream(
        self, request: web.Request, execution: Execution, after: int
    ) -> web.StreamResponse:
        """Stream ``execution`` after event ``after``, running it first if it is neither
        running nor finished (the connection is registered before: a cut applies to it)."""
        transport = request.transport
        connection = Connection(
            is_open=lambda: transport is not None and not transport.is_closing(),
            written=after,
            cuts_seen=len(execution.cuts),
        )
        execution.connections.append(connection)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                SESSION_HEADER: execution.agent_session_id,
            }
        )
        try:
            if execution.retry_after_error(after) or (
                not execution.running and not execution.finished
            ):
                self.sessions[execution.agent_session_id].status = AgentSessionState.ACTIVE
                start(execution, self.pacing, self.tool_runs, self._on_final)
            await response.prepare(request)
            await pump(response, execution, connection, self.heartbeat_s)
        except asyncio.CancelledError:
            if not connection.dropped and not self._closing:
                self._client_left(execution, connection)
            raise
        except ConnectionError:  # the client went while an event was written: no traceback
            if not connection.dropped and not self._closing:
                self._client_left(execution, connection)
            return response
        finally:
            execution.connections.remove(connection)
            execution.signal.fire()
        if connection.dropped and transport is not None:
            transport.close()  # the chunked body never ends: the client sees a cut
        return response

    def _client_left(self, execution: Execution, connection: Connection) -> None:
        others = [c for c in execution.connections if c is not connection and c.is_open()]
        if not others:
            execution.cancel()

    async def _session(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "missing or wrong X-API-Key"}, status=401)
        session = self.sessions.get(request.match_info["agent_session_id"])
        if session is None:
            return web.json_response({"error": "unknown agent session"}, status=404)
        body = SessionStatusBody(
            agent_session_id=session.agent_session_id,
            status=session.status,
            profile=session.profile,
            pending_ask_id=session.pending_ask_id,
        )
        return web.json_response(text=body.model_dump_json(exclude_none=True))

    async def _health(self, _request: web.Request) -> web.Response:
        body = HealthBody(status=self.health).model_dump_json()
        return web.json_response(text=body, status=503 if self.health == "down" else 200)

    async def _unknown(self, request: web.Request) -> web.Response:
        return web.json_response({"error": f"no route {request.method} {request.path}"}, status=404)
