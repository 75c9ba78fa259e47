"""SMS encodings and segment counts (GSM 03.38), and replies cut to fit (pure, tables)."""

import pytest

from acf.channels.twilio.segments import (
    Encoding,
    encoding,
    segment_count,
    sms_parts,
)
from acf.domain.errors import InvalidValue

EXTENSION = "€[]{}^~\\|"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Order 1001 is shipped.", Encoding.GSM7),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¡ÄÖÑÜ§¿äöñüà", Encoding.GSM7),
        (EXTENSION, Encoding.GSM7),
        ("line\nbreak\r", Encoding.GSM7),
        ("ç", Encoding.UCS2),  # only the capital is in GSM-7
        ("it\u2019s", Encoding.UCS2),  # a typographic apostrophe
        ("ok 😀", Encoding.UCS2),
        ("你好", Encoding.UCS2),
        ("", Encoding.GSM7),
    ],
)
def test_encoding(text: str, expected: Encoding) -> None:
    assert encoding(text) is expected


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 0),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 153 * 2, 2),
        ("a" * (153 * 2 + 1), 3),
        ("a" * 153 * 3, 3),
        ("a" * (153 * 10), 10),
        ("a" * (153 * 10 + 1), 11),
        ("€" * 80, 1),  # 160 septets: extension characters count two
        ("a" * 159 + "€", 2),  # 161 septets
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 152, 3),  # 306 septets, but € does not straddle
        ("ç" * 70, 1),
        ("ç" * 71, 2),
        ("ç" * 67 * 2, 2),
        ("ç" * (67 * 2 + 1), 3),
        ("😀" * 35, 1),  # 70 UTF-16 code units
        ("😀" * 36, 2),
        ("a" * 68 + "😀", 1),
        ("a" * 69 + "😀", 2),
        ("ç" * 66 + "😀" + "ç" * 66, 3),  # 134 units, but the emoji does not straddle
    ],
)
def test_segment_count(text: str, segments: int) -> None:
    assert segment_count(text) == segments


def test_a_short_reply_is_one_part() -> None:
    assert sms_parts("  Your order 1001 is shipped.  ", 10) == ["Your order 1001 is shipped."]
    assert sms_parts("   ", 10) == []


def test_a_long_reply_is_cut_at_sentence_ends_within_the_segments() -> None:
    text = " ".join(f"Sentence number {i} of this answer is here." for i in range(60))
    for max_segments in (1, 2, 10):
        parts = sms_parts(text, max_segments)
        assert " ".join(parts) == text
        assert all(segment_count(p) <= max_segments for p in parts)
        assert all(p.endswith(".") for p in parts)
        assert all(len(p) <= 1600 for p in parts)
    assert len(sms_parts(text, 1)) == 20  # three sentences fit in 160 characters, four do not


def test_one_non_gsm_character_makes_parts_ucs2_sized() -> None:
    text = " ".join(f"Étape {i} terminée ✓." for i in range(40))
    parts = sms_parts(text, 1)
    assert all(encoding(p) is Encoding.UCS2 and len(p) <= 70 for p in parts)
    assert " ".join(parts) == text


def test_only_the_parts_that_need_it_are_ucs2() -> None:
    gsm = "Plain words here. " * 9  # 162 characters
    parts = sms_parts(gsm + "Then an emoji 😀.", 1)
    assert [(len(p), encoding(p)) for p in parts] == [(143, Encoding.GSM7), (34, Encoding.UCS2)]


def test_extension_characters_count_twice_when_cutting() -> None:
    text = "{x} " * 60  # 240 characters, 360 septets
    parts = sms_parts(text, 1)
    assert all(segment_count(p) == 1 for p in parts)
    # 26 groups of 6 septets, 155 without the last space: 103 characters, not 160
    assert [len(p) for p in parts] == [103, 103, 31]


def test_an_endless_word_is_cut_at_the_limit() -> None:
    assert [len(p) for p in sms_parts("x" * 400, 1)] == [160, 160, 80]
    assert [len(p) for p in sms_parts("😀" * 50, 1)] == [35, 15]
    assert [len(p) for p in sms_parts("y" * 400, 2)] == [306, 94]


def test_at_least_one_segment() -> None:
    with pytest.raises(InvalidValue, match="max_segments"):
        sms_parts("hi", 0)
