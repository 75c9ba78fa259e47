"""Chat messages as the model reads them: the customer's messages of this turn, the
assistant's tool calls, and each tool call's result. Pure.

A tool result tells the model what happened in words it cannot misread: the gateway's
outcome, the value or error, and for an action already done when it was done, with a note
to say so instead of doing it again. Times are the ledger's, never the clock's now, so the
same turn builds the same request on a retry or a recovery (its completion is reused).
"""

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from acf.domain.messages import InboundMessage
from acf.domain.tools import Outcome, ToolResult
from acf.pipelines.llm.completion import Completion

NOTES: Mapping[str, str] = {
    Outcome.OK.value: "Done.",
    Outcome.ALREADY_DONE.value: (
        "This was already done earlier (see done_at) and was NOT done again: tell the "
        "customer it was already done, and when."
    ),
    Outcome.REFUSED.value: "Not allowed: this tool is not available to you. Nothing ran.",
    Outcome.INVALID.value: "Nothing ran: the arguments are invalid (see error).",
    Outcome.FAILED.value: "It failed; nothing was done (see error).",
    Outcome.IN_DOUBT.value: (
        "The outcome is unknown; a person will check. Do not say it was done or not done."
    ),
}


def iso_time(ms: int | None) -> str | None:
    """``ms`` (epoch milliseconds) as an ISO 8601 UTC time, to the minute."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


def plain(value: Any) -> Any:
    """``value`` as plain JSON (tuples become lists, anything else its text)."""
    return json.loads(json.dumps(value, default=str))


def result_content(result: ToolResult) -> dict[str, Any]:
    """What the model reads for one tool call's result."""
    content: dict[str, Any] = {"outcome": result.outcome.value}
    if result.value is not None:
        content["value"] = plain(result.value)
    if result.error:
        content["error"] = result.error
    if result.done_at_ms is not None and result.outcome is Outcome.ALREADY_DONE:
        content["done_at"] = iso_time(result.done_at_ms)
        content["done_at_ms"] = result.done_at_ms
    content["note"] = NOTES[result.outcome.value]
    return content


def tool_message(call_id: str, content: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "role": "tool",
        "tool_call_id": call_id,
        "content": json.dumps(content, sort_keys=True, ensure_ascii=False),
    }


def assistant_message(completion: Completion) -> dict[str, Any]:
    """The model's answer as the next request repeats it: its text and its tool calls."""
    message: dict[str, Any] = {"role": "assistant", "content": completion.text or None}
    if completion.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in completion.tool_calls
        ]
    return message


def call_ids(assistant: Mapping[str, Any]) -> list[str]:
    """The ids of an assistant message's tool calls, in order."""
    return [str(call["id"]) for call in assistant.get("tool_calls") or ()]


def message_text(message: InboundMessage) -> str:
    """One customer message as text: its text, a button's title (or id), a media note."""
    parts: list[str] = []
    if message.text and message.text.strip():
        parts.append(message.text.strip())
    if message.button is not None:
        parts.append((message.button.title or message.button.button_id).strip())
    for media in message.media:
        caption = f": {media.caption}" if media.caption else ""
        parts.append(f"[the customer sent {media.mime_type or 'a file'}{caption}]")
    return "\n".join(p for p in parts if p)


def user_messages(messages: Sequence[InboundMessage]) -> list[dict[str, Any]]:
    """This turn's customer messages, one user message each (a correction stays apart)."""
    texts = (message_text(m) for m in messages)
    return [{"role": "user", "content": text} for text in texts if text]
