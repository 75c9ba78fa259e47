"""Numbered answers (DESIGN §9): where buttons reached the customer as numbered options,
the number they answer with is the button they chose.

The stored message keeps the customer's text; the turn's pipeline sees it with the button
reply filled in, exactly as if the channel had shown the buttons.
"""

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from acf.domain.capabilities import ChannelCapabilities
from acf.domain.formatting import shown_as_options
from acf.domain.messages import ButtonReply, InboundMessage
from acf.domain.replies import Button

# "2", "2.", "#2", "(2)", "option 2": one number, nothing else of substance ("no 2" is
# not one: it may be a refusal).
_NUMBER_ANSWER = re.compile(
    r"\s*(?:(?:option|number)\s*)?[#(]?\s*(\d{1,2})\s*[.)]?\s*[.!]?\s*", re.IGNORECASE
)


def numbered_answer(text: str | None, buttons: Sequence[Button]) -> Button | None:
    """The button a customer chose by answering with its number (as ``numbered_options``
    listed them), or None when the text is not a bare number in range."""
    if not text or not buttons:
        return None
    match = _NUMBER_ANSWER.fullmatch(text)
    if match is None:
        return None
    number = int(match.group(1))
    return buttons[number - 1] if 1 <= number <= len(buttons) else None


def with_numbered_answers(
    messages: Sequence[InboundMessage],
    last_seen: Mapping[str, Any] | None,
    shown_on: ChannelCapabilities | None,
) -> list[InboundMessage]:
    """``messages`` with a number that answers the buttons of ``last_seen`` (the newest
    reply that reached the customer) read as that button, when the channel it went out on
    (``shown_on``) showed those buttons as numbered options."""
    raw = (last_seen or {}).get("buttons") or []
    buttons = [Button(str(b["id"]), str(b["title"])) for b in raw]
    if shown_on is None or not shown_as_options(shown_on, buttons):
        return list(messages)
    mapped = []
    for message in messages:
        chosen = None if message.button is not None else numbered_answer(message.text, buttons)
        if chosen is not None:
            message = dataclasses.replace(
                message, button=ButtonReply(chosen.button_id, chosen.title)
            )
        mapped.append(message)
    return mapped
