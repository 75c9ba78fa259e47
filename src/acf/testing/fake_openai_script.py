"""What ``FakeOpenAI`` answers: the scripted items and the exact chunks each one becomes.

A token is a word with its leading whitespace (``"Hello world."`` is ``"Hello"`` and
``" world."``), so a test knows how many chunks and completion tokens an answer makes. A
tool call streams as OpenAI streams it: one chunk with its index, id and name (and empty
arguments), then its arguments in fragments (tokens of the JSON text); each of these chunks
is one completion token too.
"""

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(r"\s*\S+")


def tokens(text: str) -> list[str]:
    """``text`` cut into tokens whose concatenation is ``text`` again."""
    found = _TOKEN.findall(text)
    if not found:
        return [text] if text else []
    rest = text[sum(len(t) for t in found) :]
    if rest:  # trailing whitespace stays with the last word
        found[-1] += rest
    return found


@dataclass(frozen=True, slots=True)
class FakeToolCall:
    name: str
    arguments: str | Mapping[str, Any] = "{}"
    """JSON text (sent as is, valid or not) or a mapping (sent as its JSON)."""
    call_id: str | None = None
    """Default: ``call_<request number>_<index>``."""

    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments))


@dataclass(frozen=True, slots=True)
class Answer:
    """A 200 answer: ``text`` streamed one token per chunk, then the tool calls."""

    text: str = "OK."
    tool_calls: tuple[FakeToolCall, ...] = ()
    finish_reason: str | None = None
    """Default: ``tool_calls`` when there are some, else ``stop``."""
    ttft_ms: int | None = None
    """Wait before the answer starts (headers and first token); default: the server's."""
    tokens_per_s: float | None = None
    """Pace after the first token; default: the server's (0 or None: no wait)."""
    send_usage: bool = True
    """Send the usage chunk when the request asks for it (False: an endpoint that never does)."""


@dataclass(frozen=True, slots=True)
class HttpError:
    """An error answer. ``body`` defaults to OpenAI's ``{"error": {...}}`` shape."""

    status: int
    body: Mapping[str, Any] | str | None = None
    retry_after: str | None = None
    """The ``Retry-After`` header: seconds or an HTTP date."""
    delay_ms: int = 0

    def body_bytes(self) -> bytes:
        if isinstance(self.body, str):
            return self.body.encode()
        body = self.body
        if body is None:
            body = {
                "error": {
                    "message": f"fake error {self.status}",
                    "type": "server_error" if self.status >= 500 else "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
        return json.dumps(dict(body)).encode()


@dataclass(frozen=True, slots=True)
class CutStream:
    """``answer``'s stream cut off: headers and the role chunk, ``chunks`` token chunks,
    then the connection drops (no finish, no usage, no ``[DONE]``)."""

    chunks: int
    answer: Answer = field(default_factory=lambda: Answer("one two three four five six"))


Item = Answer | HttpError | CutStream
Responder = Callable[[Mapping[str, Any]], Item]


def answer_ok(_request: Mapping[str, Any]) -> Item:
    """The default responder: ``OK.``."""
    return Answer("OK.")


@dataclass(frozen=True, slots=True)
class Chunk:
    payload: dict[str, Any]
    is_token: bool


@dataclass(frozen=True, slots=True)
class Reply:
    """The chunks of one streamed answer, and its whole (non-streamed) form."""

    chunks: tuple[Chunk, ...]
    whole: dict[str, Any]

    @property
    def token_count(self) -> int:
        return sum(1 for c in self.chunks if c.is_token)


def plan(
    answer: Answer,
    *,
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
    prompt_tokens: int,
    call_prefix: str,
) -> Reply:
    """Every chunk ``answer`` streams, in order (role, tokens, finish, usage)."""
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": created}
    base |= {"model": model, "system_fingerprint": "fp_fake"}
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return base | {"choices": [choice]}

    chunks = [Chunk(chunk({"role": "assistant", "content": "", "refusal": None}), False)]
    chunks += [Chunk(chunk({"content": t}), True) for t in tokens(answer.text)]
    calls = []
    for index, call in enumerate(answer.tool_calls):
        call_id = call.call_id or f"{call_prefix}_{index}"
        arguments = call.arguments_text()
        calls.append(
            {"id": call_id, "type": "function"}
            | {"function": {"name": call.name, "arguments": arguments}}
        )
        head = {"index": index, "id": call_id, "type": "function"}
        head["function"] = {"name": call.name, "arguments": ""}
        chunks.append(Chunk(chunk({"tool_calls": [head]}), True))
        for fragment in tokens(arguments):
            part = {"index": index, "function": {"arguments": fragment}}
            chunks.append(Chunk(chunk({"tool_calls": [part]}), True))
    finish = answer.finish_reason or ("tool_calls" if answer.tool_calls else "stop")
    chunks.append(Chunk(chunk({}, finish), False))
    completion = sum(1 for c in chunks if c.is_token)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }
    if include_usage and answer.send_usage:
        chunks.append(Chunk(base | {"choices": [], "usage": usage}, False))
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    message["refusal"] = None
    if calls:
        message["tool_calls"] = calls
    whole = {"id": completion_id, "object": "chat.completion", "created": created}
    whole |= {"model": model, "system_fingerprint": "fp_fake", "usage": usage}
    whole["choices"] = [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]
    return Reply(tuple(chunks), whole)
