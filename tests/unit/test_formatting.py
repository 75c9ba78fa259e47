"""Table tests of outbound formatting: splitting and numbered options."""

import pytest

from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.formatting import numbered_options, shown_as_options, split_text
from acf.domain.numbered_answers import numbered_answer
from acf.domain.replies import Button


@pytest.mark.parametrize(
    ("text", "limit", "parts"),
    [
        ("Short.", 20, ["Short."]),
        ("", 20, []),
        ("One. Two. Three.", 10, ["One. Two.", "Three."]),
        ("Is it here? Yes! It is.", 12, ["Is it here?", "Yes! It is."]),
        ('He said "go." Then left.', 14, ['He said "go."', "Then left."]),
        ("no sentence end in this long line", 12, ["no sentence", "end in this", "long line"]),
        ("abcdefghij", 4, ["abcd", "efgh", "ij"]),
        ("Line one\nline two", 9, ["Line one", "line two"]),
        ("  padded.  ", 20, ["padded."]),
    ],
)
def test_split_text(text: str, limit: int, parts: list[str]) -> None:
    assert split_text(text, limit) == parts
    assert all(len(p) <= limit for p in parts)


def test_split_keeps_every_word_of_a_long_reply() -> None:
    text = " ".join(f"Sentence number {i} ends here." for i in range(500))
    parts = split_text(text, 4096)
    assert len(parts) > 1 and all(len(p) <= 4096 for p in parts)
    assert all(p.endswith(".") for p in parts)
    assert " ".join(parts) == text


def test_split_refuses_a_limit_below_one() -> None:
    with pytest.raises(InvalidValue):
        split_text("x", 0)


BUTTONS = (Button("yes", "Yes"), Button("no", "No"), Button("agent", "Talk to a person"))


def test_numbered_options_list_each_button() -> None:
    assert numbered_options("Refund order 42?", BUTTONS) == (
        "Refund order 42?\n\n1. Yes\n2. No\n3. Talk to a person"
    )


YES_NO = [Button("yes", "Yes"), Button("no", "No")]


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ("1", "yes"),
        ("2", "no"),
        (" 2. ", "no"),
        ("#1", "yes"),
        ("(2)", "no"),
        ("option 2", "no"),
        ("number 1", "yes"),
        ("No. 1", None),
        ("no 2", None),
        ("2!", "no"),
        ("3", None),
        ("0", None),
        ("2 please cancel", None),
        ("12", None),
        ("yes", None),
        ("", None),
        (None, None),
    ],
)
def test_a_number_answer_maps_back_to_its_button(text: str | None, chosen: str | None) -> None:
    button = numbered_answer(text, YES_NO)
    assert (button.button_id if button else None) == chosen


def test_no_buttons_no_mapping() -> None:
    assert numbered_answer("1", []) is None


SMS = DEFAULT_CAPABILITIES[Channel.SMS]
WHATSAPP = DEFAULT_CAPABILITIES[Channel.WHATSAPP]


@pytest.mark.parametrize(
    ("capabilities", "buttons", "as_options"),
    [
        (SMS, YES_NO, True),
        (WHATSAPP, YES_NO, False),
        (WHATSAPP, [Button(str(i), f"Option {i}") for i in range(4)], True),
        (WHATSAPP, [Button("a", "A title well over twenty")], True),
        (WHATSAPP, [Button("a", "Same"), Button("b", "Same")], True),
        (WHATSAPP, [], False),
    ],
)
def test_buttons_a_channel_cannot_show_become_options(
    capabilities: ChannelCapabilities, buttons: list[Button], as_options: bool
) -> None:
    assert shown_as_options(capabilities, buttons) is as_options
