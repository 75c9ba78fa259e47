"""One run of the agent service pipeline over one turn (DESIGN §16, seed 004 Stories 2-7).

1. **Prepare** (``prepare``, a memoised step): the request and its execution key, written
   ahead on the agent session row before any request.
2. **Execute** (``execution.run_execution``): retries, resumes and the endpoint's circuit
   breaker; each event becomes the turn's effects (``events.EventProcessor``); the row
   learns the agent session's id from the stream's first event (the final one, when it
   is the first to name it), so a restart continues that agent session.
3. **End**: the ``agent_service.execution`` event (the execution ended so, whether or not
   the turn commits), then the result: the reply (the answer; the question with its
   options as buttons; the tenant's text for a failure), the row's new status
   (``PipelineResult.agent_session``: written with the turn's commit, so a turn superseded
   after the end leaves the row open under its key and the restart ``supersedes`` it), the
   outcome category and, for a failure, the dead letter's content
   (``PipelineResult.failed_call``: the request, the execution key and agent session, so a
   replay sends the same key, ``replays``).

A cancellation (a supersede, the deadline, the runtime stopping) closes the stream (the
service cancels the execution), leaves the row's execution open under its key, reports
``agent_service.execution`` with outcome ``superseded`` when it still can, and propagates.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from acf.config.agent_service import AgentServicePipelineFields
from acf.domain.agent_sessions import AgentSessionRow
from acf.domain.agent_settings import DEFAULT_FALLBACK_TEXT
from acf.domain.replies import FailedCall, PipelineResult, ReplySegment
from acf.observability.trace_context import inject_trace, traced
from acf.pipelines.agent_service import asks, rows
from acf.pipelines.agent_service.client import AgentServiceClient
from acf.pipelines.agent_service.events import EventProcessor
from acf.pipelines.agent_service.execution import ExecutionFailed, ExecutionResult, run_execution
from acf.pipelines.agent_service.outcome import (
    Ending,
    ExecutionFacts,
    category,
    execution_event,
    failure_text,
)
from acf.pipelines.agent_service.prepare import Prepared, prepare, row_of
from acf.pipelines.agent_service.protocol import AskUserData, CompleteData, ErrorData
from acf.pipelines.agent_service.replays import request_record
from acf.pipelines.agent_service.state import appended, service_patch, tool_log
from acf.pipelines.llm.breaker import CircuitBreaker, CircuitState
from acf.pipelines.llm.shaping import shape
from acf.ports.pipeline import TurnContext

log = structlog.get_logger("acf.agent_service")

GetClient = Callable[[], Awaitable[AgentServiceClient]]
"""The pipeline's client, made on first use; raises ``ExecutionFailed`` when it cannot be
(its API key's secret is not set)."""


@dataclass(frozen=True, slots=True)
class Setup:
    """What every turn of one agent shares."""

    fields: AgentServicePipelineFields
    endpoint: str
    client: GetClient
    breaker: CircuitBreaker


def traceparent_of(trace_id: str) -> str | None:
    """The W3C ``traceparent`` of an outbound call in the turn's trace."""
    headers: dict[str, str] = {}
    with traced(trace_id):
        inject_trace(headers)
    return headers.get("traceparent")


class AgentServiceTurn:
    def __init__(self, setup: Setup, ctx: TurnContext, processor: EventProcessor) -> None:
        self.setup = setup
        self.ctx = ctx
        self.fields = setup.fields
        self.processor = processor
        processor.on_named = self._named
        self.row: AgentSessionRow | None = None
        self.client: AgentServiceClient | None = None

    async def _named(self, agent_session_id: str) -> None:
        """The service named the agent session: the row learns it at once (a restart
        after a supersede then continues that agent session)."""
        row = self.row
        if row is not None and row.agent_session_id is None:
            self.row = rows.named(row, agent_session_id)
            await self.ctx.agent_sessions.save(self.row)

    async def run(self) -> PipelineResult:
        prepared = await prepare(self.ctx, self.fields)
        self.row = await row_of(self.ctx, prepared)
        self.processor.start()
        try:
            self.client = client = await self.setup.client()
            result = await run_execution(
                client,
                self.fields.profile,
                prepared.request,
                key=prepared.key,
                supersedes=prepared.supersedes,
                clock=self.ctx.clock,
                deadline_ms=self.ctx.deadline_ms,
                retries=self.fields.retries,
                breaker=self.setup.breaker,
                on_event=self.processor.on_event,
                traceparent=traceparent_of(self.ctx.correlation.trace_id),
                on_restart=self.processor.on_restart,
                on_circuit=self._circuit,
            )
        except ExecutionFailed as failed:
            return await self._failed(prepared, failed)
        except asyncio.CancelledError:
            await self._report_cancelled()
            raise
        return await self._ended(prepared, result)

    async def _circuit(self, state: CircuitState) -> None:
        data = {"endpoint": self.setup.endpoint, "state": state.value}
        await self.ctx.emit("agent_service.circuit", data)

    async def _report_cancelled(self) -> None:
        """``agent_service.execution`` (superseded), shielded from a second cancellation;
        a report that fails (the lease lost) is logged, never raised."""
        facts = self._facts(Ending.SUPERSEDED, None)
        report = asyncio.ensure_future(
            self.ctx.emit("agent_service.execution", execution_event(facts))
        )
        try:
            await asyncio.shield(report)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("agent_service.cancel_report_failed", error=type(exc).__name__)

    # -- the end -----------------------------------------------------------------------

    async def _ended(self, prepared: Prepared, result: ExecutionResult) -> PipelineResult:
        final, now = result.final, self.ctx.clock.now_ms()
        self.processor.mark(final.type.value)
        session_id = result.agent_session_id or self.processor.agent_session_id
        if session_id:  # the final event was the first to name it: learnt at once too
            await self._named(session_id)
        assert self.row is not None
        if isinstance(final, CompleteData):
            ending = Ending.COMPLETE
            self.row = rows.completed(self.row, session_id, now)
            segments = self._answer(final, prepared)
        elif isinstance(final, AskUserData):
            ending = Ending.ASK_USER
            options = tuple(final.options or ())
            self.row = rows.awaiting(
                self.row, session_id, final.ask_id, final.question, options, now
            )
            segments = self._question(final, options, prepared)
        else:
            assert isinstance(final, ErrorData)
            return await self._error(prepared, result, final)
        facts = self._facts(ending, result)
        await self.ctx.emit("agent_service.execution", execution_event(facts))
        if ending is Ending.ASK_USER:
            assert isinstance(final, AskUserData)
            await self.ctx.emit("agent_service.ask_user", {"ask_id": final.ask_id})
        return self._result(prepared, ending, segments, facts)

    def _answer(self, final: CompleteData, prepared: Prepared) -> tuple[ReplySegment, ...]:
        answer = final.answer if final.answer.strip() else self.processor.text
        texts = shape([answer], self.ctx.capabilities)
        if not texts:
            fallback = self.ctx.config.get("settings", {}).get("fallback_text")
            texts = [fallback if isinstance(fallback, str) else DEFAULT_FALLBACK_TEXT]
        texts[0] = asks.with_notice(self._notice(prepared), texts[0])
        return tuple(ReplySegment(t) for t in texts)

    def _question(
        self, final: AskUserData, options: tuple[str, ...], prepared: Prepared
    ) -> tuple[ReplySegment, ...]:
        question = asks.with_notice(self._notice(prepared), final.question)
        parts = shape([question], self.ctx.capabilities) or [final.question]
        asked = asks.question_segment(parts[-1], options)
        return (*(ReplySegment(p) for p in parts[:-1]), asked)

    async def _error(
        self, prepared: Prepared, result: ExecutionResult, final: ErrorData
    ) -> PipelineResult:
        assert self.client is not None  # an ERROR event came through it
        error = self.client.redact(f"ERROR {final.code}: {final.message}")  # never our key
        facts = self._facts(Ending.ERROR, result, error_kind="agent_error")
        return await self._fail(prepared, facts, error, None, result.attempts)

    async def _failed(self, prepared: Prepared, failed: ExecutionFailed) -> PipelineResult:
        facts = self._facts(Ending.FAILED, None, failed)
        return await self._fail(prepared, facts, failed.message, failed, failed.attempts)

    async def _fail(
        self,
        prepared: Prepared,
        facts: ExecutionFacts,
        error: str,
        failed: ExecutionFailed | None,
        attempts: int,
    ) -> PipelineResult:
        assert self.row is not None
        now = self.ctx.clock.now_ms()
        if failed is not None and failed.attempts == 0:  # nothing reached the service
            self.row = rows.not_sent(self.row, error, now)
        else:
            self.row = rows.failed(self.row, error, now, self.processor.agent_session_id)
        await self.ctx.emit("agent_service.execution", execution_event(facts))
        text = failure_text(None if failed is None else failed.kind, self.fields.texts)
        text = asks.with_notice(self._notice(prepared), text)
        # A replay resends the key of an execution that may have run in part (the service
        # deduplicates it); after a final ERROR the execution ended: a replay is a new one.
        key = prepared.key if failed is not None else None
        asked = request_record(prepared.request, key, self.row.agent_session_id)
        call = FailedCall(asked, self.row.last_error or error, attempts)
        segments = (ReplySegment(text),)
        return self._result(prepared, facts.ending, segments, facts, failed_call=call)

    def _notice(self, prepared: Prepared) -> str | None:
        return self.fields.texts.ask_expired if prepared.expired is not None else None

    def _facts(
        self,
        ending: Ending,
        result: ExecutionResult | None,
        failed: ExecutionFailed | None = None,
        error_kind: str | None = None,
    ) -> ExecutionFacts:
        p = self.processor
        return ExecutionFacts(
            profile=self.fields.profile,
            endpoint=self.setup.endpoint,
            ending=ending,
            attempts=result.attempts if result else (failed.attempts if failed else 0),
            resumes=result.resumes if result else 0,
            duration_ms=result.duration_ms if result else p.elapsed_ms(),
            first_event_ms=result.first_event_ms if result else None,
            first_chunk_ms=result.first_chunk_ms if result else None,
            error_kind=error_kind or (failed.kind.value if failed else None),
            offsets=tuple(p.offsets),
        )

    def _result(
        self,
        prepared: Prepared,
        ending: Ending,
        segments: tuple[ReplySegment, ...],
        facts: ExecutionFacts,
        failed_call: FailedCall | None = None,
    ) -> PipelineResult:
        p, row = self.processor, self.row
        decided = category(ending, p.side_effect_done)
        details = {
            "outcome": decided.value,
            "profile": self.fields.profile,
            "ending": ending.value,
            "execution_key": prepared.key,
            "agent_session_id": None if row is None else row.agent_session_id,
            "attempts": facts.attempts,
            "resumes": facts.resumes,
            "duration_ms": facts.duration_ms,
            "first_chunk_ms": facts.first_chunk_ms,
            "error_kind": facts.error_kind,
            "ask_expired": prepared.expired is not None,
            "tools": [{"tool": e["tool"], "outcome": e["outcome"]} for e in p.tool_log],
        }
        patch = None
        if p.tool_log:
            patch = service_patch({"tool_log": appended(tool_log(self.ctx.state), p.tool_log)})
        return PipelineResult(
            segments=segments,
            state_patch=patch,
            outcomes=(decided.value,),
            details={"agent_service": details},
            awaiting_answer=ending is Ending.ASK_USER,
            failed_call=failed_call,
            agent_session=row,
        )
