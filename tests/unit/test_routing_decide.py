"""The router's decision, a pure function: every reason, commands taken off the text, whole
words and case, rule order, explicit rules over stickiness, the classifier's answer after
every rule and before the default (and when it is asked at all), the switch, the
fallback."""

from dataclasses import dataclass

import pytest

from acf.pipelines.router import MATCH_CHARS
from acf.pipelines.routing.decide import (
    Decision,
    Reason,
    RouteRule,
    classifier_needed,
    classifying,
    decide,
    keyword_pattern,
    leading_command,
)

RULES = (
    RouteRule.of("agent", commands=["/agent", "@agent"]),
    RouteRule.of("llm", commands=["/llm"]),
    RouteRule.of("agent", keywords=["search", "analyze file", "run code"]),
    RouteRule.of("orders", regex=r"order\s*#?\d+"),
    RouteRule.of("llm", keywords=["order"]),
    RouteRule.of("agent", classify="needs a file or data analysed"),
    RouteRule.of("orders", classify="asks about an order"),
    RouteRule.of("agent", classify="needs code run"),
)
EXPLICIT_ONLY = RULES[:5]


@dataclass(frozen=True)
class Case:
    text: str
    route: str
    reason: Reason
    rule: int | None = None
    routed_text: str | None = None
    sticky: str | None = None
    down: frozenset[str] = frozenset()
    fallback: str | None = "llm"
    enabled: bool = True
    replay: str | None = None
    fallback_from: str | None = None
    classified: str | None = None


CASES = {
    "command": Case("/agent find my invoice", "agent", Reason.COMMAND, 0, "find my invoice"),
    "at command": Case("@agent hi", "agent", Reason.COMMAND, 0, "hi"),
    "command alone": Case("/agent", "agent", Reason.COMMAND, 0, ""),
    "command any case": Case("/AGENT  Hi there ", "agent", Reason.COMMAND, 0, "Hi there"),
    "command after spaces": Case("   @Agent\nhi", "agent", Reason.COMMAND, 0, "hi"),
    "command must end": Case("/agents hi", "llm", Reason.DEFAULT),
    "command only at start": Case("please /agent hi", "llm", Reason.DEFAULT),
    "command beats earlier keyword": Case("/llm search it", "llm", Reason.COMMAND, 1, "search it"),
    "keyword": Case("Can you search the web?", "agent", Reason.KEYWORD, 2),
    "keyword any case": Case("SEARCH now", "agent", Reason.KEYWORD, 2),
    "keyword of two words": Case("please analyze   file x", "agent", Reason.KEYWORD, 2),
    "keyword whole word": Case("a research paper", "llm", Reason.DEFAULT),
    "keyword whole word end": Case("searches", "llm", Reason.DEFAULT),
    "keyword by punctuation": Case("search!", "agent", Reason.KEYWORD, 2),
    "regex": Case("where is ORDER #42", "orders", Reason.REGEX, 3),
    "first rule in order": Case("order 42: search", "agent", Reason.KEYWORD, 2),
    "later keyword": Case("my order is late", "llm", Reason.KEYWORD, 4),
    "default": Case("hello", "llm", Reason.DEFAULT),
    "sticky": Case("and then?", "agent", Reason.STICKY, sticky="agent"),
    "rule beats sticky": Case("/llm hi", "llm", Reason.COMMAND, 1, "hi", sticky="agent"),
    "sticky beats a keyword": Case("order 7", "agent", Reason.STICKY, sticky="agent"),
    "disabled": Case("/agent hi", "llm", Reason.DISABLED, routed_text="/agent hi", enabled=False),
    "disabled ignores sticky": Case("x", "llm", Reason.DISABLED, sticky="agent", enabled=False),
    "replay": Case("", "agent", Reason.REPLAY, replay="agent"),
    "fallback": Case(
        "/agent hi",
        "llm",
        Reason.FALLBACK,
        0,
        "hi",
        down=frozenset({"agent"}),
        fallback_from="agent",
    ),
    "sticky falls back": Case(
        "and then?",
        "llm",
        Reason.FALLBACK,
        sticky="agent",
        down=frozenset({"agent"}),
        fallback_from="agent",
    ),
    "keyword falls back": Case(
        "search", "llm", Reason.FALLBACK, 2, down=frozenset({"agent"}), fallback_from="agent"
    ),
    "classifier": Case(
        "can you analyze this spreadsheet", "agent", Reason.CLASSIFIER, 5, classified="agent"
    ),
    "classifier's other route": Case(
        "where did my parcel go", "orders", Reason.CLASSIFIER, 6, classified="orders"
    ),
    "classifier found none": Case("hello", "llm", Reason.DEFAULT, classified=None),
    "classifier names no classifying route": Case("hello", "llm", Reason.DEFAULT, classified="llm"),
    "classifier names no route": Case("hello", "llm", Reason.DEFAULT, classified="nope"),
    "classifier on blank text": Case("  ", "llm", Reason.DEFAULT, classified="agent"),
    "command beats classifier": Case("/llm hi", "llm", Reason.COMMAND, 1, "hi", classified="agent"),
    "sticky beats classifier": Case(
        "and then?", "agent", Reason.STICKY, sticky="agent", classified="orders"
    ),
    "keyword beats classifier": Case("search it", "agent", Reason.KEYWORD, 2, classified="orders"),
    "regex beats classifier": Case("order 42", "orders", Reason.REGEX, 3, classified="agent"),
    "disabled ignores classifier": Case(
        "x", "llm", Reason.DISABLED, enabled=False, classified="agent"
    ),
    "replay beats classifier": Case(
        "x", "orders", Reason.REPLAY, replay="orders", classified="agent"
    ),
    "classifier falls back": Case(
        "analyze this",
        "llm",
        Reason.FALLBACK,
        5,
        down=frozenset({"agent"}),
        fallback_from="agent",
        classified="agent",
    ),
    "no fallback set": Case(
        "/agent hi", "agent", Reason.COMMAND, 0, "hi", down=frozenset({"agent"}), fallback=None
    ),
    "fallback is the route": Case(
        "/llm hi", "llm", Reason.COMMAND, 1, "hi", down=frozenset({"llm"})
    ),
    "available route stays": Case(
        "/agent hi", "agent", Reason.COMMAND, 0, "hi", down=frozenset({"orders"})
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_decide(case: Case) -> None:
    asked: list[str] = []

    def available(route: str) -> bool:
        asked.append(route)
        return route not in case.down

    decision = decide(
        case.text,
        RULES,
        enabled=case.enabled,
        default="llm",
        sticky_route=case.sticky,
        available=available,
        fallback=case.fallback,
        replay_route=case.replay,
        classified=case.classified,
    )
    expected_text = case.text if case.routed_text is None else case.routed_text
    assert (decision.route, decision.reason) == (case.route, case.reason)
    assert decision.rule_index == case.rule
    assert decision.text_for_route == expected_text
    assert decision.fallback_from == case.fallback_from
    if case.fallback is None:
        assert asked == []  # nothing to fall back to: availability is not asked


def test_a_command_is_reported_as_typed() -> None:
    decision = decide(
        "@Agent hi",
        RULES,
        enabled=True,
        default="llm",
        sticky_route=None,
        available=lambda _: False,
        fallback="llm",
    )
    assert decision == Decision("llm", Reason.FALLBACK, 0, "hi", "agent", "@Agent")


def test_keywords_and_regex_see_only_the_end_of_a_long_text() -> None:
    early = "search " + "x " * MATCH_CHARS
    decision = decide(
        early,
        RULES,
        enabled=True,
        default="llm",
        sticky_route=None,
        available=lambda _: True,
        fallback=None,
    )
    assert decision.reason is Reason.DEFAULT
    late = "x " * MATCH_CHARS + "search"
    decision = decide(
        late,
        RULES,
        enabled=True,
        default="llm",
        sticky_route=None,
        available=lambda _: True,
        fallback=None,
    )
    assert decision.reason is Reason.KEYWORD


def test_a_command_starts_even_a_long_text() -> None:
    text = "/agent " + "y " * MATCH_CHARS
    decision = decide(
        text,
        RULES,
        enabled=True,
        default="llm",
        sticky_route=None,
        available=lambda _: True,
        fallback=None,
    )
    assert decision.reason is Reason.COMMAND
    assert decision.text_for_route == text[len("/agent ") :].strip()


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("/agent", ("/agent", "")),
        ("/Agent\tx", ("/Agent", "x")),
        ("/agent-x", None),
        ("/agen", None),
        ("x /agent", None),
    ],
)
def test_leading_command(text: str, found: tuple[str, str] | None) -> None:
    assert leading_command(text, ["/agent"]) == found


def test_keyword_patterns_escape_and_skip_blank_keywords() -> None:
    pattern = keyword_pattern(["c++", "  ", "a.b"])
    assert pattern is not None
    assert pattern.search("I like C++ a lot")
    assert pattern.search("see a.b")
    assert not pattern.search("see axb")
    assert keyword_pattern(["  "]) is None


@pytest.mark.parametrize(
    ("text", "rules", "sticky", "enabled", "replay", "needed"),
    [
        ("can you analyze this spreadsheet", RULES, None, True, None, True),
        ("hello", RULES, None, True, None, True),
        ("hello", EXPLICIT_ONLY, None, True, None, False),  # no rule classifies
        ("   ", RULES, None, True, None, False),
        ("/agent analyze this", RULES, None, True, None, False),
        ("search it", RULES, None, True, None, False),
        ("order 42", RULES, None, True, None, False),
        ("and then?", RULES, "agent", True, None, False),
        ("hello", RULES, None, False, None, False),
        ("hello", RULES, None, True, "agent", False),
    ],
)
def test_the_classifier_is_needed_only_when_its_answer_can_decide(
    text: str,
    rules: tuple[RouteRule, ...],
    sticky: str | None,
    enabled: bool,
    replay: str | None,
    needed: bool,
) -> None:
    assert (
        classifier_needed(text, rules, enabled=enabled, sticky_route=sticky, replay_route=replay)
        is needed
    )
    if needed:  # and then its answer is what decides
        decision = decide(
            text,
            rules,
            enabled=enabled,
            default="llm",
            sticky_route=sticky,
            available=lambda _: True,
            fallback=None,
            replay_route=replay,
            classified="orders",
        )
        assert decision.reason is Reason.CLASSIFIER


def test_the_classifiers_candidates_join_each_routes_descriptions_in_rule_order() -> None:
    assert classifying(RULES) == {
        "agent": "needs a file or data analysed; needs code run",
        "orders": "asks about an order",
    }
    assert classifying(EXPLICIT_ONLY) == {}
