"""A scripted model for LLM agents on the virtual clock: the harness's and the scenarios'
stand-in for an endpoint (``FakeOpenAI`` is the real-HTTP one).

It answers the ``llm`` pipeline's completions from a list of answers: text streamed one
token (a word with its leading space) at a time after a time to first token, and tool
calls. An answer with ``when`` is used only for a request whose newest message contains
that text; the first unused answer that fits wins; with none left, ``default``. A
supersede cancels a completion like a closed stream: it reports
``llm.generation_cancelled`` with the tokens streamed so far.
"""

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acf.pipelines.llm.completion import Completion, OnDelta, OnEvent, ToolCall, Usage
from acf.pipelines.llm.streamed import estimate_prompt_tokens
from acf.ports.clock import Clock

_TOKEN = re.compile(r"\s*\S+")


@dataclass(frozen=True, slots=True)
class ScriptedCall:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScriptedAnswer:
    text: str = ""
    tool_calls: tuple[ScriptedCall, ...] = ()
    when: str | None = None
    """Only for a request whose newest message contains this text."""


def _newest_content(request: Mapping[str, Any]) -> str:
    messages = request.get("messages") or []
    content = messages[-1].get("content") if messages else None
    return content if isinstance(content, str) else json.dumps(content, default=str)


class ScriptedModel:
    """Implements the LLM pipeline's ``Completer`` from a script."""

    def __init__(
        self,
        answers: Sequence[ScriptedAnswer] = (),
        *,
        model: str = "scripted",
        ttft_ms: int = 0,
        tokens_per_s: float = 0.0,
        default: str = "OK.",
    ) -> None:
        self.model = model
        self.ttft_ms = ttft_ms
        self.tokens_per_s = tokens_per_s
        self.default = default
        self._left = list(answers)
        self.requests: list[Mapping[str, Any]] = []
        """Every completion asked for (a recovery reusing a stored one asks none)."""
        self.cancelled = 0

    def _pick(self, request: Mapping[str, Any]) -> ScriptedAnswer:
        newest = _newest_content(request)
        for index, answer in enumerate(self._left):
            if answer.when is None or answer.when in newest:
                return self._left.pop(index)
        return ScriptedAnswer(self.default)

    async def complete(
        self,
        request: Mapping[str, Any],
        *,
        clock: Clock,
        deadline_ms: int,
        on_delta: OnDelta | None = None,
        on_event: OnEvent | None = None,
    ) -> Completion:
        self.requests.append(request)
        answer = self._pick(request)
        streamed = 0
        try:
            if self.ttft_ms:
                await clock.sleep(self.ttft_ms / 1000)
            for token in _TOKEN.findall(answer.text):
                if streamed and self.tokens_per_s > 0:
                    await clock.sleep(1 / self.tokens_per_s)
                streamed += 1
                if on_delta is not None:
                    await on_delta(token)
        except asyncio.CancelledError:
            self.cancelled += 1
            if on_event is not None:
                data = {
                    "model": self.model,
                    "completion_tokens_streamed": streamed,
                    "prompt_tokens_estimate": estimate_prompt_tokens(request),
                }
                await asyncio.shield(on_event("llm.generation_cancelled", data))
            raise
        number = len(self.requests)
        calls = tuple(
            ToolCall(f"call_{number}_{i}", c.name, json.dumps(dict(c.arguments)))
            for i, c in enumerate(answer.tool_calls)
        )
        return Completion(
            model=self.model,
            text=answer.text,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else "stop",
            usage=Usage(estimate_prompt_tokens(request), streamed + len(calls)),
            ttft_ms=self.ttft_ms,
        )
