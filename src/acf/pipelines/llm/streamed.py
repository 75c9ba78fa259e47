"""What one streamed chat completion adds up to: its text, its tool calls assembled by index
from their fragments, its finish reason and usage; and the stated estimate of a request's
prompt tokens, used when an endpoint sends no usage (and by ``FakeOpenAI``'s usage).

The SDK builds chunks without validating them, so a chunk may hold anything an endpoint
sent: ``absorb`` reads only what has the expected shape and skips the rest (no choices, a
delta or content that is not one, a tool call fragment without an index or fields), never
raising on a malformed chunk.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from acf.pipelines.llm.completion import ToolCall, Usage


def estimate_prompt_tokens(request: Mapping[str, Any]) -> int:
    """A stated estimate of a request's prompt tokens: the characters of its messages'
    contents and tool calls, divided by 4, plus 4 per message (tools are not counted)."""
    chars = 0
    count = 0
    for message in request.get("messages") or ():
        if not isinstance(message, Mapping):
            continue
        count += 1
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(p.get("text") or "")) for p in content if isinstance(p, dict))
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping):
                chars += len(str(function.get("name") or ""))
                chars += len(str(function.get("arguments") or ""))
    return chars // 4 + 4 * count


@dataclass
class StreamedAnswer:
    """One request's stream, assembled chunk by chunk (``absorb``)."""

    text: list[str] = field(default_factory=list)
    calls: dict[int, list[str]] = field(default_factory=dict)
    """index -> [id, name, arguments so far]."""
    finish_reason: str | None = None
    usage: Usage | None = None
    ttft_ms: int | None = None
    chunks: int = 0
    _last_call: int | None = field(default=None, init=False, repr=False)
    """The index of the call the last tool call fragment went to."""

    def absorb(self, chunk: object) -> tuple[str, bool]:
        """Add one chunk: the text it carried, and whether it carried a token (text or a
        tool call). Only the first choice counts (one without an index is taken for it);
        a refusal counts as text."""
        self._absorb_usage(getattr(chunk, "usage", None))
        choices = getattr(chunk, "choices", None)
        text = ""
        token = False
        for choice in choices if isinstance(choices, list) else ():
            if getattr(choice, "index", None) not in (0, None):
                continue
            delta = getattr(choice, "delta", None)
            piece = _string(getattr(delta, "content", None))
            piece += _string(getattr(delta, "refusal", None))
            if piece:
                self.text.append(piece)
                text += piece
                token = True
            calls = getattr(delta, "tool_calls", None)
            for call in calls if isinstance(calls, list) else ():
                token = self.add_call(call) or token
            finish = getattr(choice, "finish_reason", None)
            if isinstance(finish, str) and finish:
                self.finish_reason = finish
        return text, token

    def add_call(self, delta: object) -> bool:
        """Add one tool call fragment; whether it carried anything (an id, a name or
        arguments). A fragment without an index (some endpoints send each call whole,
        without one) starts a new call when no call came yet, or when it has an id other
        than the last call's, or a name while the last call has one and another id or
        none; else it continues the last call."""
        call_id = _string(getattr(delta, "id", None))
        function = getattr(delta, "function", None)
        name = _string(getattr(function, "name", None))
        arguments = _string(getattr(function, "arguments", None))
        if not (call_id or name or arguments):
            return False
        index = getattr(delta, "index", None)
        if not isinstance(index, int) or isinstance(index, bool):
            index = self._unindexed(call_id, name)
        self._last_call = index
        call = self.calls.setdefault(index, ["", "", ""])
        if call_id and not call[0]:
            call[0] = call_id
        if name and not call[1]:
            call[1] = name
        call[2] += arguments
        return True

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(call_id or f"call_{index}", name, arguments)
            for index, (call_id, name, arguments) in sorted(self.calls.items())
        )

    def _unindexed(self, call_id: str, name: str) -> int:
        last = self._last_call
        if last is None:
            return max(self.calls, default=-1) + 1
        last_id, last_name, _ = self.calls[last]
        same_id = bool(call_id) and call_id == last_id
        other_id = bool(call_id and last_id) and not same_id
        if other_id or (name and last_name and not same_id):
            return max(self.calls) + 1
        return last

    def _absorb_usage(self, usage: object) -> None:
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        if _count(prompt) and _count(completion):
            self.usage = Usage(prompt, completion)


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
