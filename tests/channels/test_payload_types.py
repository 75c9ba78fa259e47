"""The field rules the WhatsApp and Telegram payload models share (pure functions)."""

from typing import Any

import pytest

from acf.channels.payload_types import (
    MAX_UNIX_S,
    Lenient,
    NonEmpty,
    Strict,
    unix_ms,
    validated,
)
from acf.domain.errors import InvalidValue

NOW_MS = 1_750_000_000_000
DAY_S = 86_400


@pytest.mark.parametrize(
    ("seconds", "ms"),
    [
        (1, 1000),
        (1_749_416_383, 1_749_416_383_000),
        (NOW_MS // 1000 + DAY_S, NOW_MS + DAY_S * 1000),  # clock skew: a day ahead at most
        (NOW_MS // 1000 + DAY_S + 1, None),
        (0, None),
        (-5, None),
        (2**63, None),
        (MAX_UNIX_S + 1, None),
    ],
)
def test_a_provider_timestamp_is_after_1970_and_at_most_a_day_ahead(
    seconds: int, ms: int | None
) -> None:
    if ms is not None:
        assert unix_ms(seconds, "date", NOW_MS) == ms
        return
    with pytest.raises(InvalidValue) as refused:
        unix_ms(seconds, "date", NOW_MS)
    assert str(refused.value).startswith(f"date: {seconds} is not a time a message can have")


def test_the_year_9999_bounds_a_clock_far_ahead() -> None:
    far = (MAX_UNIX_S + 10 * DAY_S) * 1000
    assert unix_ms(MAX_UNIX_S, "date", far) == MAX_UNIX_S * 1000
    with pytest.raises(InvalidValue):
        unix_ms(MAX_UNIX_S + 1, "date", far)


class Named(Strict):
    name: NonEmpty
    nick: Lenient[NonEmpty] = None


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        ({"name": "Ada", "nick": "ada"}, ("Ada", "ada")),
        ({"name": "Ada", "nick": ["ada"]}, ("Ada", None)),  # optional and wrong: dropped
        ({"name": "Ada", "nick": "a\x00"}, ("Ada", None)),
        ({"name": "Ada", "extra": 1}, ("Ada", None)),  # a field not named is ignored
        ({"name": 5}, "person.name: input should be a valid string"),
        ({"name": ""}, "person.name: string should have at least 1 character"),
        ({"name": "a\x00b"}, "person.name: contains a NUL character"),
        (
            {"name": "\ud800"},
            "person.name: input should be a valid string, unable to parse raw data as a "
            "unicode string",
        ),
        ({}, "person.name: field required"),
        ([], "person: expected an object"),
    ],
)
def test_required_fields_refuse_their_item_and_optional_ones_are_dropped(
    value: Any, outcome: tuple[str, str | None] | str
) -> None:
    if isinstance(outcome, tuple):
        named = validated(Named, value, "person")
        assert (named.name, named.nick) == outcome
        return
    with pytest.raises(InvalidValue) as refused:
        validated(Named, value, "person")
    assert str(refused.value) == outcome
