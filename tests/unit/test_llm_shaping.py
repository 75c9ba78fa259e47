"""A reply shaped for its channel: markdown stripped where the channel has none, each
message within the channel's length."""

import pytest

from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.channels import Channel
from acf.pipelines.llm.shaping import shape, strip_markdown


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("**Order 7** has _shipped_.", "Order 7 has shipped."),
        ("Use __this__ and *that*.", "Use this and that."),
        ("Call `lookup_order` now", "Call lookup_order now"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("2 * 3 * 4 = 24", "2 * 3 * 4 = 24"),
        ("# Your order\n\nIt shipped.", "Your order\n\nIt shipped."),
        ("* one\n* two\n+ three", "- one\n- two\n- three"),
        ("- already plain", "- already plain"),
        ("> quoted words", "quoted words"),
        ("See [the tracker](https://t.example/7).", "See the tracker (https://t.example/7)."),
        ("[https://x.example](https://x.example)", "https://x.example"),
        ("![map](https://m.example/a.png)", "map (https://m.example/a.png)"),
        ("```\ncode line\n```", "code line"),
        ("Above\n\n---\n\nBelow", "Above\n\nBelow"),
        ("~~old~~ new", "old new"),
        ("a\n\n\n\nb", "a\n\nb"),
    ],
)
def test_strip_markdown(text: str, plain: str) -> None:
    assert strip_markdown(text) == plain


def test_markdown_stays_where_the_channel_shows_it() -> None:
    web = DEFAULT_CAPABILITIES[Channel.WEB]
    assert shape(["**Bold** text"], web) == ["**Bold** text"]
    assert shape(["**Bold** text"], DEFAULT_CAPABILITIES[Channel.SMS]) == ["Bold text"]


def test_long_messages_are_split_at_sentence_ends_and_empty_ones_dropped() -> None:
    narrow = ChannelCapabilities(max_text_length=20)
    assert shape(["First sentence. Second sentence.", "  ", "Short."], narrow) == [
        "First sentence.",
        "Second sentence.",
        "Short.",
    ]


def test_paragraphs_stay_in_one_message() -> None:
    web = DEFAULT_CAPABILITIES[Channel.WEB]
    assert shape(["One.\n\nTwo."], web) == ["One.\n\nTwo."]
