"""The rolling summary of a conversation's older turns: where it lives in the session
state, and the request that refreshes it.

It lives in the pipeline's part of the state (``acf.pipelines.llm.state``),
``data.llm.summary``::

    {"text": "...", "through": [at_ms, rank, band, offset, id], "as_of": [...]}

``through`` is the position (``history.Entry.order``) of the newest entry the text covers:
older entries are never shown again. ``as_of`` is the position of the newest entry the
history held when the text was written: the turns committed after it say when a refresh
is due. Positions come from the conversation's own times, never from the clock: the
refresh request is the same on every attempt, and a memoised model call finds it again.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from acf.pipelines.llm.state import llm_patch, llm_state
from acf.pipelines.llm.tokens import TokenCounter

TOOL_NOTE_PREFIX = "[earlier tool call]"
TOOL_NOTE_GUIDE = (
    f"Lines starting with {TOOL_NOTE_PREFIX} in earlier assistant messages record tools "
    "you ran in earlier turns and what they returned; they were not shown to the customer. "
    "Never write such lines yourself."
)
"""For the system message, when the history shows tool notes."""

Position = tuple[int, int, int, int, str]
"""Where an entry sits in the conversation (``history.Entry.order``)."""


def _position(raw: Any) -> Position | None:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) != 5:
        return None
    *numbers, ident = raw
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        return None
    if not isinstance(ident, str):
        return None
    return (numbers[0], numbers[1], numbers[2], numbers[3], ident)


class StoredSummary:
    """The summary as the session state holds it (``None`` fields: no summary yet)."""

    __slots__ = ("as_of", "text", "through")

    def __init__(self, text: str | None, through: Position | None, as_of: Position | None):
        self.text = text
        self.through = through
        self.as_of = as_of

    @classmethod
    def read(cls, state: Mapping[str, Any]) -> "StoredSummary":
        """From a session state; a malformed summary reads as none (it is rewritten)."""
        raw = llm_state(state).get("summary")
        if not isinstance(raw, Mapping):
            return cls(None, None, None)
        text, through = raw.get("text"), _position(raw.get("through"))
        if not isinstance(text, str) or not text.strip() or through is None:
            return cls(None, None, None)
        return cls(text, through, _position(raw.get("as_of")) or through)

    @staticmethod
    def patch(text: str, through: Position, as_of: Position) -> dict[str, Any]:
        """The state patch storing a refreshed summary (every field is replaced)."""
        return llm_patch(
            {"summary": {"text": text, "through": list(through), "as_of": list(as_of)}}
        )


SUMMARY_INSTRUCTION = (
    "You keep the running summary of a conversation between a customer and a support "
    "agent, for the agent who continues it. Rewrite the summary so that it also covers the "
    "new part of the conversation. Keep what the agent needs to go on: what the customer "
    "wants, names and identifiers (orders, accounts, addresses), what was promised, "
    "decided, done or refused and with what result, and what is still open. Leave out "
    "greetings and small talk. Lines marked Tool are records of tools the agent ran. "
    "Write plain text in the conversation's language, at most {words} words, with no "
    "preamble."
)


def summary_request(
    previous: str | None, transcript: Sequence[tuple[str, str]], max_words: int
) -> list[dict[str, Any]]:
    """The chat-completions messages asking the model for the refreshed summary.

    ``transcript``: the entries folded into it, oldest first, as (speaker, text) with
    speaker ``Customer``, ``Agent``, ``Tool``, ``Operator <name>`` or ``Notice``.
    """
    lines = "\n".join(f"{speaker}: {text}" for speaker, text in transcript)
    return [
        {"role": "system", "content": SUMMARY_INSTRUCTION.format(words=max_words)},
        {
            "role": "user",
            "content": (
                f"Summary so far:\n{previous.strip() if previous else '(none yet)'}\n\n"
                f"New part of the conversation, oldest first:\n{lines}"
            ),
        },
    ]


def trimmed(text: str, max_tokens: int, counter: TokenCounter) -> str:
    """``text`` cut at a word boundary so that it counts at most ``max_tokens`` (a model may
    write more than it was asked to)."""
    text = text.strip()
    if counter.text(text) <= max_tokens:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits
        middle = (low + high + 1) // 2
        if counter.text(text[:middle] + " ...") <= max_tokens:
            low = middle
        else:
            high = middle - 1
    cut = text[:low]
    if " " in cut.strip():
        cut = cut[: cut.rstrip().rfind(" ")]
    return f"{cut.rstrip()} ..." if cut.strip() else ""
