"""What people said in the conversation, as the agent reads it (issue #22): an operator's
replies, the notices sent while a person had the conversation, and the handover note.

- An operator's reply is an outbox row whose payload has ``author: "operator"`` and
  ``operator: {key_id, name}``: the history shows it as an assistant turn marked
  ``[operator <name>]`` (never the key id);
- a notice queued by the fabric, not by the agent (``author: "system"``: "a person will
  answer you shortly"), is marked ``[notice]``;
- a reply without ``author`` (or ``author: "agent"``) is the agent's own, unmarked.

The mark goes before every line of the reply (``mark_lines``): the history joins a turn's
replies into one assistant message, and a reply of several lines must not read, from its
second line on, as the agent's own words.

When the history shows a marked reply, the system message says how to read the marks
(``PEOPLE_GUIDE``). A session an operator handed back carries ``meta.handover``
``{note, by: {key_id, name}, at_ms}`` in its state until the agent's next commit clears it;
meanwhile the turn's request says so in a system message (``handover_note``).

Pure: the same reply or state gives the same text.
"""

from collections.abc import Mapping
from typing import Any

OPERATOR_AUTHOR = "operator"
SYSTEM_AUTHOR = "system"
NOTICE_MARK = "[notice]"
OPERATOR_MARK = "[operator"
NAME_CHARS = 60
"""An operator's name is cut to this length where it is shown."""
PEOPLE_GUIDE = (
    f"Lines starting with {OPERATOR_MARK} <name>] in earlier assistant messages were written "
    "by a human operator who took over the conversation, not by you; lines starting with "
    f"{NOTICE_MARK} are automatic notices the customer received. Never write such marks "
    "yourself."
)
"""For the system message, when the history shows an operator's reply or a notice."""


def operator_name(operator: Any) -> str | None:
    """The display name in an ``operator``/``by`` object (``{key_id, name}``), on one line
    and without brackets; None when it has none."""
    if not isinstance(operator, Mapping):
        return None
    raw = operator.get("name")
    if not isinstance(raw, str):
        return None
    name = " ".join(raw.replace("[", " ").replace("]", " ").split())
    if len(name) > NAME_CHARS:
        name = name[: NAME_CHARS - 3].rstrip() + "..."
    return name or None


def reply_mark(reply: Mapping[str, Any]) -> str | None:
    """The mark before a reply's text: ``[operator Alice]``, ``[notice]``, or None for the
    agent's own reply."""
    author = reply.get("author")
    if author == OPERATOR_AUTHOR:
        name = operator_name(reply.get("operator"))
        return f"{OPERATOR_MARK} {name}]" if name else f"{OPERATOR_MARK}]"
    if author == SYSTEM_AUTHOR:
        return NOTICE_MARK
    return None


def mark_lines(mark: str, text: str) -> str:
    """``text`` with ``mark`` before each of its lines (any break a model reads as one:
    ``str.splitlines``, written back as ``\n``); a blank line stays blank."""
    return "\n".join(f"{mark} {line}" if line.strip() else line for line in text.splitlines())


def unmark_lines(mark: str, text: str) -> str:
    """``text`` as it was before ``mark_lines`` (line breaks as ``\n``): for the summary's
    transcript, which names the speaker instead."""
    prefix = f"{mark} "
    return "\n".join(line.removeprefix(prefix) for line in text.split("\n"))


def reply_speaker(reply: Mapping[str, Any]) -> str:
    """Who said it, for the summary's transcript."""
    author = reply.get("author")
    if author == OPERATOR_AUTHOR:
        name = operator_name(reply.get("operator"))
        return f"Operator {name}" if name else "Operator"
    if author == SYSTEM_AUTHOR:
        return "Notice"
    return "Agent"


def handover_note(state: Mapping[str, Any]) -> str | None:
    """The system note of a session an operator handed back (``meta.handover``), or None.

    ``A human operator (Alice) handled this conversation and handed it back: <note>``; without
    a note, ``... and handed it back to you.``"""
    meta = state.get("meta")
    handover = meta.get("handover") if isinstance(meta, Mapping) else None
    if not isinstance(handover, Mapping):
        return None
    name = operator_name(handover.get("by"))
    who = f"A human operator ({name})" if name else "A human operator"
    note = handover.get("note")
    text = note.strip() if isinstance(note, str) else ""
    if text:
        return f"{who} handled this conversation and handed it back: {text}"
    return f"{who} handled this conversation and handed it back to you."
