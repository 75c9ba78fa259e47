"""Enforcement of a generated reply: claims of actions that did not run, banned phrases,
length and the required disclosure (pure, table-tested)."""

import pytest

from acf.config.pipelines import EnforcementFields
from acf.pipelines.llm import enforcement as e

RULES = e.Rules.from_fields(
    EnforcementFields(
        max_chars=60,
        banned_phrases=["guarantee", "legal advice", "100%"],
        required_disclosure="I am an automated assistant.",
        claims={
            "refund_order": [r"\bI(?: have|'ve)? refunded\b", r"refund (?:is|was) (?:done|issued)"],
            "create_ticket": [r"\bticket\b.*\b(created|opened)\b"],
        },
    )
)


@pytest.mark.parametrize(
    ("texts", "done", "expected"),
    [
        (["Your order has shipped."], set(), []),
        (["I have refunded order 7."], set(), [("claimed_action", "refund_order")]),
        (["I've REFUNDED it."], set(), [("claimed_action", "refund_order")]),
        (["I have refunded order 7."], {"refund_order"}, []),
        (["The refund was issued today."], set(), [("claimed_action", "refund_order")]),
        (["A ticket", "was created for you."], set(), [("claimed_action", "create_ticket")]),
        (["A ticket\n\nwas opened."], set(), [("claimed_action", "create_ticket")]),
        (["Shall I refund order 7?"], set(), []),
        (["We guarantee delivery."], set(), [("banned_phrase", "guarantee")]),
        (["We guaranteed nothing."], set(), []),  # whole words only
        (["It is 100% safe."], set(), [("banned_phrase", "100%")]),
        (["This is not Legal Advice."], set(), [("banned_phrase", "legal advice")]),
        # The words the customer reads, markdown or not:
        (["I have **refunded** order 7."], set(), [("claimed_action", "refund_order")]),
        (["I _have_ refunded it."], set(), [("claimed_action", "refund_order")]),
        (["This is not **legal** advice."], set(), [("banned_phrase", "legal advice")]),
        (["x" * 61], set(), [("max_length", "61")]),
        (["x" * 30, "y" * 30], set(), []),
        (
            ["I have refunded it, guaranteed " + "!" * 40],
            set(),
            [("claimed_action", "refund_order"), ("max_length", "71")],
        ),
    ],
)
def test_check(texts: list[str], done: set[str], expected: list[tuple[str, str]]) -> None:
    assert [(h.rule, h.detail) for h in e.check(RULES, texts, done)] == expected


def test_no_rules_find_nothing() -> None:
    assert e.check(e.Rules(), ["I have refunded everything, guaranteed."], set()) == []


def test_the_retry_note_says_why() -> None:
    hits = e.check(RULES, ["I have refunded it. We guarantee it."], set())
    note = e.retry_note(hits)
    assert note.startswith("Your previous reply was not sent.")
    assert "refund_order" in note and '"guarantee"' in note


@pytest.mark.parametrize(
    ("rules", "withheld"),
    [
        (["max_length"], False),
        (["claimed_action"], True),
        (["banned_phrase", "max_length"], True),
    ],
)
def test_what_a_second_hit_does(rules: list[str], withheld: bool) -> None:
    assert e.withholds([e.Hit(r, "", "") for r in rules]) is withheld


@pytest.mark.parametrize(
    ("texts", "limit", "expected"),
    [
        (["Short."], 10, ["Short."]),
        (["First one. Second one."], 12, ["First one."]),
        (["Fits.", "Next part. More."], 16, ["Fits.", "Next part."]),
        (["Exactly ten", "Dropped."], 11, ["Exactly ten"]),
        (["abcdefghij"], 4, ["abcd"]),
    ],
)
def test_cut(texts: list[str], limit: int, expected: list[str]) -> None:
    assert e.cut(texts, limit) == expected


@pytest.mark.parametrize(
    ("every", "texts", "earlier", "needed"),
    [
        (False, ["Hello."], [], True),
        (False, ["Hello."], ["Hi. I am an automated assistant."], False),
        (True, ["Hello."], ["Hi. I am an automated assistant."], True),
        (True, ["Hello. i am an AUTOMATED assistant."], [], False),
    ],
)
def test_disclosure(every: bool, texts: list[str], earlier: list[str], needed: bool) -> None:
    rules = e.Rules(disclosure="I am an automated assistant.", disclosure_every_reply=every)
    assert e.needs_disclosure(rules, texts, earlier) is needed
    assert e.needs_disclosure(e.Rules(), texts, earlier) is False
