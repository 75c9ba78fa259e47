"""The outcome category of an LLM turn: fixed rules first, the model's report after
(pure, table-tested)."""

import pytest

from acf.pipelines.llm.outcomes import Category, Report, TurnFacts, decide, parse_report

HANDOFF = Report(Category.HANDOFF, "angry customer")


@pytest.mark.parametrize(
    ("facts", "category", "flagged"),
    [
        (TurnFacts(), Category.ANSWERED, False),
        (TurnFacts(reported=Report(Category.KNOWLEDGE_GAP)), Category.KNOWLEDGE_GAP, False),
        (TurnFacts(confirmation_asked=True), Category.ASKED_USER, False),
        (
            TurnFacts(confirmation_asked=True, reported=Report(Category.OUT_OF_SCOPE)),
            Category.ASKED_USER,
            False,
        ),
        (TurnFacts(side_effect_done=True), Category.TOOL_DONE, False),
        (
            TurnFacts(side_effect_done=True, reported=Report(Category.ANSWERED)),
            Category.TOOL_DONE,
            False,
        ),
        (TurnFacts(confirmation_asked=True, side_effect_done=True), Category.ASKED_USER, False),
        (TurnFacts(reported=HANDOFF), Category.HANDOFF, True),
        (TurnFacts(side_effect_done=True, reported=HANDOFF), Category.TOOL_DONE, True),
        (TurnFacts(withheld="claimed_action"), Category.FAILED, True),
        (TurnFacts(withheld="x", confirmation_asked=True), Category.FAILED, True),
    ],
)
def test_decide(facts: TurnFacts, category: Category, flagged: bool) -> None:
    decision = decide(facts)
    assert decision.category is category
    assert (decision.handoff is not None) is flagged


def test_the_handoff_says_why() -> None:
    both = decide(TurnFacts(reported=HANDOFF, withheld="banned_phrase"))
    assert both.handoff == (
        "reply withheld by enforcement: banned_phrase; the agent handed off: angry customer"
    )
    assert decide(TurnFacts(reported=Report(Category.HANDOFF))).handoff == (
        "the agent handed off: no reason given"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"category": "ANSWERED"}, Report(Category.ANSWERED)),
        (
            {"category": " handoff ", "reason": " needs a person "},
            Report(Category.HANDOFF, "needs a person"),
        ),
        ({"category": "OUT_OF_SCOPE", "reason": 3}, Report(Category.OUT_OF_SCOPE)),
        (
            {"category": "SAFETY_REFUSAL", "reason": "x" * 500},
            Report(Category.SAFETY_REFUSAL, "x" * 300),
        ),
    ],
)
def test_parse_report(args: dict[str, object], expected: Report) -> None:
    assert parse_report(args) == expected


@pytest.mark.parametrize("category", ["TOOL_DONE", "FAILED", "DONE", None, 7])
def test_facts_are_not_reportable(category: object) -> None:
    problem = parse_report({"category": category})
    assert isinstance(problem, str) and "expected one of" in problem
