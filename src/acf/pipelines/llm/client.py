"""``LlmClient``: one chat completion from an OpenAI-compatible endpoint, through the official
``openai`` SDK, streamed, with acf's retries, fallback models and circuit breaker (DESIGN §16).

The SDK's own retries are off (``max_retries=0``): each failure goes to ``retry.decide``,
and the backoff sleeps on the turn's clock, so a test on a virtual clock waits no wall time.
Per model, in order: the endpoint's breaker is asked first (open: no request), then the
request is streamed; a transient failure is retried (1/2/4 s, ``Retry-After`` honoured,
never past the deadline), anything else moves on to the next model; when every model
failed, ``LlmUnavailable`` names them and their last errors.

Timeouts (``LlmTimeouts``), in real time: connecting; the first token (also the longest
silence between two chunks); the whole request, cut shorter by the turn's deadline.

Events through ``on_event``: ``llm.retry`` {model, attempt (the request that failed, from
1), reason, delay_ms, restart}, ``llm.fallback_model`` {model, previous_model, reason,
restart}, ``llm.circuit`` {endpoint, state}, ``llm.generation_cancelled`` {model,
completion_tokens_streamed, prompt_tokens_estimate}. ``restart`` is true when text was
already given to ``on_delta``: the caller's draft is void and the next text starts afresh.

Token counts: usage comes from the endpoint's usage chunk; an endpoint that sends none is
estimated, the prompt by ``estimate_prompt_tokens`` and the completion as the chunks that
carried text or a tool call (an OpenAI stream sends about one token per chunk).

A request the breaker let through always ends recorded: its success or failure goes to the
breaker before anything else is awaited, and whatever ends it without an outcome (a
cancellation, an event report that fails, an error of the caller's ``on_delta``) abandons
it, so a half-open circuit's probe is never left taken. Anything unexpected raised while
reading the stream (a malformed chunk the SDK could not build) is a cut stream: retried.

The API key goes only into the ``Authorization`` header: it is masked in every message
this module makes, and never in an event or a log line.
"""

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
import structlog

from acf.observability.redaction import redact_text, register_secret, secrets_pattern
from acf.pipelines.llm.breaker import BreakerBoard, CircuitState, endpoint_key, shared_board
from acf.pipelines.llm.completion import (
    Completion,
    LlmUnavailable,
    OnDelta,
    OnEvent,
    Usage,
)
from acf.pipelines.llm.retry import Failure, FailureKind, Retry, RetryPolicy, decide
from acf.pipelines.llm.streamed import StreamedAnswer, estimate_prompt_tokens
from acf.ports.clock import Clock

MAX_DETAIL_CHARS = 200
DEFAULT_RETRY = RetryPolicy()

log = structlog.get_logger("acf.llm")


@dataclass(frozen=True, slots=True)
class LlmTimeouts:
    connect_s: float = 5.0
    first_token_s: float = 60.0
    """From sending the request to the first token; also the longest gap between chunks."""
    request_s: float = 300.0
    """The whole request, first byte to last; the turn's deadline may cut it shorter."""


class _AttemptFailed(Exception):
    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail
        self.opened = False
        """The endpoint's circuit opened on this failure."""


@dataclass
class _Call:
    """One ``complete`` call across its requests."""

    request: Mapping[str, Any]
    clock: Clock
    deadline_ms: int
    on_delta: OnDelta | None
    on_event: OnEvent | None
    model: str
    prompt_estimate: int
    chunks: int = 0
    """Chunks with text or a tool call, every request of the call together."""
    requests: int = 0
    dirty: bool = False
    """Text was given to ``on_delta`` since the last restart."""
    reason: str = ""
    """Why the last model was given up (for ``llm.fallback_model``)."""
    errors: list[str] = field(default_factory=list)
    """Each model given up, with its last error (for ``LlmUnavailable``)."""

    def take_restart(self) -> bool:
        dirty, self.dirty = self.dirty, False
        return dirty

    async def emit(self, name: str, data: Mapping[str, Any]) -> None:
        if self.on_event is not None:
            await self.on_event(name, data)


class LlmClient:
    """The ``Completer`` of the ``llm`` pipeline: one endpoint, its models in order.

    ``api_key`` is the resolved secret (an endpoint that needs none gets a placeholder).
    ``http_client`` (an ``openai.DefaultAsyncHttpxClient``, or any client the SDK takes),
    when given, is used and left open by ``aclose`` (its own timeouts are overridden per
    request). ``breakers`` defaults to the process-wide board."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        models: Sequence[str],
        timeouts: LlmTimeouts = LlmTimeouts(),
        http_client: openai.DefaultAsyncHttpxClient | None = None,
        breakers: BreakerBoard | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        if not models:
            raise ValueError("an LLM client needs at least one model")
        self.models = tuple(models)
        self.endpoint = endpoint_key(base_url)
        self.timeouts = timeouts
        self._retry = retry
        self._breaker = (breakers or shared_board()).breaker(self.endpoint)
        self._key = api_key
        register_secret(api_key)
        self._secrets = secrets_pattern([api_key])
        self._owns_http = http_client is None
        self._openai = openai.AsyncOpenAI(
            api_key=api_key or "unused",
            base_url=base_url,
            max_retries=0,
            timeout=openai.Timeout(
                connect=timeouts.connect_s,
                read=timeouts.first_token_s,
                write=timeouts.first_token_s,
                pool=timeouts.connect_s,
            ),
            http_client=http_client,
        )

    async def aclose(self) -> None:
        """Close the connections (not those of an ``http_client`` passed in)."""
        if self._owns_http:
            await self._openai.close()

    async def complete(
        self,
        request: Mapping[str, Any],
        *,
        clock: Clock,
        deadline_ms: int,
        on_delta: OnDelta | None = None,
        on_event: OnEvent | None = None,
    ) -> Completion:
        """See ``Completer.complete``."""
        estimate = estimate_prompt_tokens(request)
        call = _Call(request, clock, deadline_ms, on_delta, on_event, self.models[0], estimate)
        try:
            return await self._complete(call)
        except asyncio.CancelledError:
            await self._report_cancelled(call)
            raise

    async def _complete(self, call: _Call) -> Completion:
        for index, model in enumerate(self.models):
            if index:
                data = {"model": model, "previous_model": call.model, "reason": call.reason}
                await call.emit("llm.fallback_model", data | {"restart": call.take_restart()})
            call.model = model
            completion = await self._ask(call)
            if completion is not None:
                return completion
        raise self._unavailable(call.errors)

    async def _ask(self, call: _Call) -> Completion | None:
        """``call.model`` until it answers, or None when it is given up (``call.reason``
        and ``call.errors`` say why). Raises ``LlmUnavailable`` at the deadline."""
        model, clock = call.model, call.clock
        attempt = 0
        while True:
            now = clock.now_ms()
            if now >= call.deadline_ms:
                call.errors.append(f"{model}: the turn's deadline was reached")
                raise self._unavailable(call.errors)
            allowed, changed = self._breaker.allow(now)
            if not allowed:
                await self._circuit_event(call, changed)
                call.reason = "circuit_open"
                call.errors.append(f"{model}: the circuit of {self.endpoint} is open")
                return None
            attempt += 1
            call.requests += 1
            outcome = await self._request(call, changed)
            if isinstance(outcome, StreamedAnswer):
                return Completion(
                    model=model,
                    text="".join(outcome.text),
                    tool_calls=outcome.tool_calls(),
                    finish_reason=outcome.finish_reason,
                    usage=outcome.usage or Usage(call.prompt_estimate, outcome.chunks),
                    ttft_ms=outcome.ttft_ms,
                    requests=call.requests,
                )
            call.reason = outcome.failure.reason
            delay_ms = self._retry_delay(outcome, attempt, call)
            if delay_ms is None:
                return None
            data = {"model": model, "attempt": attempt, "reason": call.reason}
            await call.emit(
                "llm.retry", data | {"delay_ms": delay_ms, "restart": call.take_restart()}
            )
            await clock.sleep(delay_ms / 1000)

    async def _request(
        self, call: _Call, changed: CircuitState | None
    ) -> StreamedAnswer | _AttemptFailed:
        """One request the breaker let through (``changed``: the state its ``allow`` made).
        Its outcome goes to the breaker before anything else is awaited; whatever escapes
        before that abandons it, so a half-open circuit's probe is never left taken."""
        settled = False
        try:
            await self._circuit_event(call, changed)
            try:
                answer = await self._attempt(call)
            except _AttemptFailed as failed:
                changed = self._record_failure(failed.failure, call.clock.now_ms())
                settled = True
                failed.opened = changed is CircuitState.OPEN
                await self._circuit_event(call, changed)
                return failed
            changed = self._breaker.record_success(call.clock.now_ms())
            settled = True
            await self._circuit_event(call, changed)
            return answer
        except BaseException:
            if not settled:
                self._breaker.record_abandoned()
            raise

    def _record_failure(self, failure: Failure, now_ms: int) -> CircuitState | None:
        if failure.trips_breaker:
            return self._breaker.record_failure(now_ms)
        return self._breaker.record_success(now_ms)  # the endpoint answered

    async def _attempt(self, call: _Call) -> StreamedAnswer:
        """One streamed request; raises ``_AttemptFailed`` with what went wrong."""
        request, clock = call.request, call.clock
        body = {k: v for k, v in request.items() if k not in ("model", "stream", "messages")}
        if not body.get("tools"):
            body.pop("tools", None)  # an empty list is refused by OpenAI
        body.pop("stream_options", None)
        loop = asyncio.get_running_loop()
        started = loop.time()
        budget_s = min(self.timeouts.request_s, (call.deadline_ms - clock.now_ms()) / 1000)
        whole_end = started + budget_s
        sent_at = clock.monotonic()
        answer = StreamedAnswer()
        streaming = False
        try:
            first_token_by = min(whole_end, started + self.timeouts.first_token_s)
            async with asyncio.timeout_at(first_token_by) as window:
                stream = await self._openai.chat.completions.create(
                    model=call.model,
                    messages=request.get("messages") or [],
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_body=body,
                )
                streaming = True
                try:
                    while True:
                        try:
                            chunk = await anext(stream)
                            text, token = answer.absorb(chunk)
                        except StopAsyncIteration:
                            break
                        except (openai.APIError, json.JSONDecodeError):
                            raise
                        except Exception as exc:  # whatever the SDK raised on a bad chunk
                            detail = f"the stream broke: {self._detail(exc)}"
                            raise _AttemptFailed(Failure(FailureKind.CUT_STREAM), detail) from None
                        if not token:
                            continue
                        answer.chunks += 1
                        call.chunks += 1
                        if answer.ttft_ms is None:
                            answer.ttft_ms = round((clock.monotonic() - sent_at) * 1000)
                            window.reschedule(whole_end)
                        if text and call.on_delta is not None:
                            call.dirty = True
                            await call.on_delta(text)
                finally:
                    await stream.close()
        except TimeoutError:
            if answer.ttft_ms is None:
                detail = f"no first token within {min(budget_s, self.timeouts.first_token_s):g} s"
            else:
                detail = f"the answer took longer than {budget_s:g} s"
            raise _AttemptFailed(Failure(FailureKind.TIMEOUT), detail) from None
        except openai.APIStatusError as exc:
            failure = Failure(
                FailureKind.HTTP_STATUS, exc.status_code, exc.response.headers.get("retry-after")
            )
            raise _AttemptFailed(failure, self._status_detail(exc)) from None
        except openai.APITimeoutError:
            raise _AttemptFailed(Failure(FailureKind.TIMEOUT), "the request timed out") from None
        except openai.APIConnectionError as exc:
            if streaming:
                detail = "the stream was cut before its end"
                raise _AttemptFailed(Failure(FailureKind.CUT_STREAM), detail) from None
            detail = f"connection failed ({type(exc.__cause__ or exc).__name__})"
            raise _AttemptFailed(Failure(FailureKind.CONNECTION), detail) from None
        except (openai.APIError, json.JSONDecodeError) as exc:
            detail = f"the stream broke: {self._redact(str(exc))[:MAX_DETAIL_CHARS]}"
            raise _AttemptFailed(Failure(FailureKind.CUT_STREAM), detail) from None
        if answer.finish_reason is None:
            detail = "the stream ended before its finish"
            raise _AttemptFailed(Failure(FailureKind.CUT_STREAM), detail)
        return answer

    def _retry_delay(self, failed: _AttemptFailed, attempt: int, call: _Call) -> int | None:
        """The wait before a retry, or None (the error is noted in ``call.errors``) when
        this model is given up or its endpoint's circuit just opened."""
        said = f"{call.model}: {failed.detail}"
        if failed.opened:
            call.errors.append(f"{said}; the circuit of {self.endpoint} opened")
            return None
        now = call.clock.now_ms()
        decision = decide(failed.failure, attempt, now, call.deadline_ms, self._retry)
        if isinstance(decision, Retry):
            return decision.delay_ms
        call.errors.append(f"{said} ({decision.reason.value})")
        return None

    async def _circuit_event(self, call: _Call, state: CircuitState | None) -> None:
        if state is not None:
            await call.emit("llm.circuit", {"endpoint": self.endpoint, "state": state.value})

    async def _report_cancelled(self, call: _Call) -> None:
        """``llm.generation_cancelled``, shielded from a second cancellation. A report that
        fails (the lease lost, the store down) is logged, never raised: the caller's
        ``CancelledError`` goes on."""
        if call.on_event is None:
            return
        data = {
            "model": call.model,
            "completion_tokens_streamed": call.chunks,
            "prompt_tokens_estimate": call.prompt_estimate,
        }
        report = asyncio.ensure_future(call.on_event("llm.generation_cancelled", data))
        report.add_done_callback(self._log_failed_report)
        with contextlib.suppress(Exception):  # logged by the callback
            await asyncio.shield(report)

    def _log_failed_report(self, report: asyncio.Future[None]) -> None:
        error = None if report.cancelled() else report.exception()
        if error is not None:
            log.warning(
                "llm.cancel_report_failed",
                endpoint=self.endpoint,
                error=type(error).__name__,
                detail=self._detail(error),
            )

    def _status_detail(self, exc: openai.APIStatusError) -> str:
        message = exc.body.get("message") if isinstance(exc.body, dict) else None
        detail = f"HTTP {exc.status_code}"
        if isinstance(message, str) and message:
            detail += f": {self._redact(message)[:MAX_DETAIL_CHARS]}"
        return detail

    def _detail(self, exc: BaseException) -> str:
        """``exc``'s type and message, secrets masked, cut short."""
        return self._redact(f"{type(exc).__name__}: {exc}")[:MAX_DETAIL_CHARS]

    def _redact(self, text: str) -> str:
        if self._key:
            text = text.replace(self._key, "***")
        return redact_text(text, self._secrets)

    def _unavailable(self, errors: list[str]) -> LlmUnavailable:
        said = "; ".join(errors)
        return LlmUnavailable(self._redact(f"no model answered at {self.endpoint}: {said}"))
