"""The router classifier's pure parts: the request it sends (candidates, ``none``, the end
of the text, a deterministic short answer) and the strict reading of the answer."""

import pytest

from acf.pipelines.routing.classify import (
    MAX_TOKENS,
    TEXT_CHARS,
    Verdict,
    classify_request,
    parse_answer,
)

CANDIDATES = {"agent": "needs a file or data analysed", "Orders": "asks about an order"}


def test_the_request_lists_every_candidate_and_none_and_sends_the_end_of_the_text() -> None:
    text = "x" * TEXT_CHARS + "tail"
    request = classify_request(CANDIDATES, text)
    system, user = request["messages"]
    assert system["role"] == "system"
    assert "- agent: needs a file or data analysed\n" in system["content"]
    assert "- Orders: asks about an order\n" in system["content"]
    assert "- none: " in system["content"]
    assert user == {"role": "user", "content": text[-TEXT_CHARS:]}
    assert user["content"].endswith("tail")
    assert (request["temperature"], request["max_tokens"]) == (0, MAX_TOKENS)
    assert set(request) == {"messages", "temperature", "max_tokens"}  # no tools, no model


@pytest.mark.parametrize(
    ("answer", "route"),
    [
        ("agent", "agent"),
        ("  AGENT\n", "agent"),
        ("orders", "Orders"),
        ("none", None),
        ("", None),
        ("agent.", None),
        ("the agent", None),
        ("llm", None),  # a route, but not a candidate
        ("agent\norders", None),
    ],
)
def test_only_an_exact_candidate_name_is_an_answer(answer: str, route: str | None) -> None:
    assert parse_answer(answer, CANDIDATES) == route


@pytest.mark.parametrize(
    "verdict", [Verdict("agent"), Verdict(None), Verdict(None, "LlmUnavailable")]
)
def test_a_verdict_survives_its_step_storage(verdict: Verdict) -> None:
    assert Verdict.from_json(verdict.to_json()) == verdict


def test_a_stored_verdict_of_the_wrong_shape_reads_as_no_route() -> None:
    assert Verdict.from_json({"route": 3, "error": ["x"]}) == Verdict(None)
    assert Verdict.from_json({}) == Verdict(None)
