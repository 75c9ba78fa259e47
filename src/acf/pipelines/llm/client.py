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

The API key goes only into the ``Authorization`` header: it is masked in every message
this module makes, and never in an event.
"""

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

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


@dataclass
class _Progress:
    """One ``complete`` call across its requests."""

    model: str
    prompt_estimate: int
    chunks: int = 0
    """Chunks with text or a tool call, every request of the call together."""
    requests: int = 0
    dirty: bool = False
    """Text was given to ``on_delta`` since the last restart."""

    def take_restart(self) -> bool:
        dirty, self.dirty = self.dirty, False
        return dirty


class LlmClient:
    """The ``Completer`` of the ``llm`` pipeline: one endpoint, its models in order.

    ``api_key`` is the resolved secret (an endpoint that needs none gets a placeholder).
    ``http_client``, when given, is used and left open by ``aclose`` (its own timeouts are
    overridden per request). ``breakers`` defaults to the process-wide board."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        models: Sequence[str],
        timeouts: LlmTimeouts = LlmTimeouts(),
        http_client: httpx2.AsyncClient | None = None,
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
            timeout=httpx2.Timeout(
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
        progress = _Progress(self.models[0], estimate_prompt_tokens(request))
        try:
            return await self._complete(request, clock, deadline_ms, on_delta, on_event, progress)
        except asyncio.CancelledError:
            if on_event is not None:
                data = {
                    "model": progress.model,
                    "completion_tokens_streamed": progress.chunks,
                    "prompt_tokens_estimate": progress.prompt_estimate,
                }
                await asyncio.shield(on_event("llm.generation_cancelled", data))
            raise

    async def _complete(
        self,
        request: Mapping[str, Any],
        clock: Clock,
        deadline_ms: int,
        on_delta: OnDelta | None,
        on_event: OnEvent | None,
        progress: _Progress,
    ) -> Completion:
        errors: list[str] = []
        reason = ""
        for index, model in enumerate(self.models):
            if index:
                await _emit(
                    on_event,
                    "llm.fallback_model",
                    {
                        "model": model,
                        "previous_model": progress.model,
                        "reason": reason,
                        "restart": progress.take_restart(),
                    },
                )
            progress.model = model
            attempt = 0
            while True:
                now = clock.now_ms()
                if now >= deadline_ms:
                    errors.append(f"{model}: the turn's deadline was reached")
                    raise self._unavailable(errors)
                allowed, changed = self._breaker.allow(now)
                await self._circuit_event(on_event, changed)
                if not allowed:
                    reason = "circuit_open"
                    errors.append(f"{model}: the circuit of {self.endpoint} is open")
                    break
                attempt += 1
                progress.requests += 1
                try:
                    answer = await self._attempt(
                        model, request, clock, deadline_ms, on_delta, progress
                    )
                except _AttemptFailed as failed:
                    reason = failed.failure.reason
                    delay_ms = await self._after_failure(
                        model, failed, attempt, clock, deadline_ms, on_event, errors
                    )
                    if delay_ms is None:
                        break
                    data = {"model": model, "attempt": attempt, "reason": reason}
                    data |= {"delay_ms": delay_ms, "restart": progress.take_restart()}
                    await _emit(on_event, "llm.retry", data)
                    await clock.sleep(delay_ms / 1000)
                    continue
                except asyncio.CancelledError:
                    self._breaker.record_abandoned()
                    raise
                await self._circuit_event(on_event, self._breaker.record_success(clock.now_ms()))
                return Completion(
                    model=model,
                    text="".join(answer.text),
                    tool_calls=answer.tool_calls(),
                    finish_reason=answer.finish_reason,
                    usage=answer.usage or Usage(progress.prompt_estimate, answer.chunks),
                    ttft_ms=answer.ttft_ms,
                    requests=progress.requests,
                )
        raise self._unavailable(errors)

    async def _attempt(
        self,
        model: str,
        request: Mapping[str, Any],
        clock: Clock,
        deadline_ms: int,
        on_delta: OnDelta | None,
        progress: _Progress,
    ) -> StreamedAnswer:
        """One streamed request; raises ``_AttemptFailed`` with what went wrong."""
        body = {k: v for k, v in request.items() if k not in ("model", "stream", "messages")}
        if not body.get("tools"):
            body.pop("tools", None)  # an empty list is refused by OpenAI
        body.pop("stream_options", None)
        loop = asyncio.get_running_loop()
        started = loop.time()
        budget_s = min(self.timeouts.request_s, (deadline_ms - clock.now_ms()) / 1000)
        whole_end = started + budget_s
        sent_at = clock.monotonic()
        answer = StreamedAnswer()
        streaming = False
        try:
            first_token_by = min(whole_end, started + self.timeouts.first_token_s)
            async with asyncio.timeout_at(first_token_by) as window:
                stream = await self._openai.chat.completions.create(
                    model=model,
                    messages=request.get("messages") or [],
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_body=body,
                )
                streaming = True
                try:
                    async for chunk in stream:
                        text, token = answer.absorb(chunk)
                        if not token:
                            continue
                        answer.chunks += 1
                        progress.chunks += 1
                        if answer.ttft_ms is None:
                            answer.ttft_ms = round((clock.monotonic() - sent_at) * 1000)
                            window.reschedule(whole_end)
                        if text and on_delta is not None:
                            progress.dirty = True
                            await on_delta(text)
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

    async def _after_failure(
        self,
        model: str,
        failed: _AttemptFailed,
        attempt: int,
        clock: Clock,
        deadline_ms: int,
        on_event: OnEvent | None,
        errors: list[str],
    ) -> int | None:
        """Tell the breaker; the wait before a retry, or None (the error is noted in
        ``errors``) when this model is given up or its endpoint's circuit just opened."""
        failure = failed.failure
        now = clock.now_ms()
        if failure.retryable:
            changed = self._breaker.record_failure(now)
        else:
            changed = self._breaker.record_success(now)  # the endpoint answered
        await self._circuit_event(on_event, changed)
        if changed is CircuitState.OPEN:
            errors.append(f"{model}: {failed.detail}; the circuit of {self.endpoint} opened")
            return None
        decision = decide(failure, attempt, now, deadline_ms, self._retry)
        if isinstance(decision, Retry):
            return decision.delay_ms
        errors.append(f"{model}: {failed.detail} ({decision.reason.value})")
        return None

    async def _circuit_event(self, on_event: OnEvent | None, state: CircuitState | None) -> None:
        if state is not None:
            data = {"endpoint": self.endpoint, "state": state.value}
            await _emit(on_event, "llm.circuit", data)

    def _status_detail(self, exc: openai.APIStatusError) -> str:
        message = exc.body.get("message") if isinstance(exc.body, dict) else None
        detail = f"HTTP {exc.status_code}"
        if isinstance(message, str) and message:
            detail += f": {self._redact(message)[:MAX_DETAIL_CHARS]}"
        return detail

    def _redact(self, text: str) -> str:
        if self._key:
            text = text.replace(self._key, "***")
        return redact_text(text, self._secrets)

    def _unavailable(self, errors: list[str]) -> LlmUnavailable:
        said = "; ".join(errors)
        return LlmUnavailable(self._redact(f"no model answered at {self.endpoint}: {said}"))


async def _emit(on_event: OnEvent | None, name: str, data: Mapping[str, Any]) -> None:
    if on_event is not None:
        await on_event(name, data)
