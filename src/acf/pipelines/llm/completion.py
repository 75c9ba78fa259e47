"""What one chat completion is, as the LLM pipeline sees it: the request it sends, what came
back (text, tool calls, usage, time to first token) and the errors that end it.

A ``Completion`` is plain JSON both ways (``to_json``/``from_json``), so it can be stored
as a turn step (``ctx.step``) and reused by a recovery without asking the model again.
"""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from acf.ports.clock import Clock

OnDelta = Callable[[str], Awaitable[None]]
"""Called with each text delta of a streaming answer, in order."""
OnEvent = Callable[[str, Mapping[str, Any]], Awaitable[None]]
"""Called with a progress event's name and data (retries, circuit changes, cancellation)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: str
    """The arguments as the model wrote them: JSON text, maybe invalid."""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.call_id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "ToolCall":
        return cls(str(raw["id"]), str(raw["name"]), str(raw["arguments"]))


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Completion:
    """One finished answer of the model (after retries and fallback models)."""

    model: str
    """The model that answered (a fallback model when the first failed for good)."""
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    ttft_ms: int | None = None
    """Time to the first streamed token (text or tool call) of the answering request."""
    requests: int = 1
    """HTTP requests made for it (retries and fallbacks included)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "text": self.text,
            "tool_calls": [c.to_json() for c in self.tool_calls],
            "finish_reason": self.finish_reason,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
            },
            "ttft_ms": self.ttft_ms,
            "requests": self.requests,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "Completion":
        usage = raw.get("usage") or {}
        return cls(
            model=str(raw["model"]),
            text=str(raw.get("text") or ""),
            tool_calls=tuple(ToolCall.from_json(c) for c in raw.get("tool_calls") or ()),
            finish_reason=raw.get("finish_reason"),
            usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
            ttft_ms=raw.get("ttft_ms"),
            requests=int(raw.get("requests", 1)),
        )


class LlmUnavailable(Exception):
    """Every model failed for good (retries spent, a 4xx that is not retried, the circuit
    open, or the deadline reached). The message says why, without any secret."""


class Completer(Protocol):
    """Asks the model for one completion: ``acf.pipelines.llm.client.LlmClient``."""

    async def complete(
        self,
        request: Mapping[str, Any],
        *,
        clock: Clock,
        deadline_ms: int,
        on_delta: OnDelta | None = None,
        on_event: OnEvent | None = None,
    ) -> Completion:
        """``request``: the chat-completions body without ``model`` and ``stream``
        (``messages``, ``tools``, ``temperature``, ``max_tokens``...). Streams; retries and
        falls back to the next model as configured, sleeping on ``clock`` and never past
        ``deadline_ms`` (wall-clock ms of ``clock``). Raises ``LlmUnavailable``. A
        cancellation closes the stream (no task or connection is left behind) and reports
        ``llm.generation_cancelled`` through ``on_event`` before it propagates."""
        ...
