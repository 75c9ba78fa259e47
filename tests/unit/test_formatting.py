"""Table tests of outbound formatting: splitting and numbered options."""

import pytest

from acf.domain.errors import InvalidValue
from acf.domain.formatting import numbered_options, split_text
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
