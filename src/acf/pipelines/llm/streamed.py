"""What one streamed chat completion adds up to: its text, its tool calls assembled by index
from their fragments, its finish reason and usage; and the stated estimate of a request's
prompt tokens, used when an endpoint sends no usage (and by ``FakeOpenAI``'s usage)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

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

    def absorb(self, chunk: ChatCompletionChunk) -> tuple[str, bool]:
        """Add one chunk: the text it carried, and whether it carried a token (text or a
        tool call). Only the first choice counts; a refusal counts as text."""
        if chunk.usage is not None:
            self.usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        text = ""
        token = False
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            text = (delta.content or "") + (delta.refusal or "")
            if text:
                self.text.append(text)
                token = True
            for call in delta.tool_calls or ():
                self.add_call(call)
                token = True
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return text, token

    def add_call(self, delta: ChoiceDeltaToolCall) -> None:
        call = self.calls.setdefault(delta.index, ["", "", ""])
        if delta.id and not call[0]:
            call[0] = delta.id
        if delta.function is not None:
            if delta.function.name and not call[1]:
                call[1] = delta.function.name
            call[2] += delta.function.arguments or ""

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(call_id or f"call_{index}", name, arguments)
            for index, (call_id, name, arguments) in sorted(self.calls.items())
        )
