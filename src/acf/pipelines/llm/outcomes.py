"""The outcome category of an LLM turn (DESIGN §16), decided by fixed rules over what the
turn did; the model's own report (``report_outcome``) counts only where no rule applies.
Pure, table-tested.

The rules, first match wins:

1. the reply was withheld by enforcement (the fallback went out instead): FAILED, and the
   session is flagged for a person (the fallback text promises one);
2. the turn asked the customer to confirm an action: ASKED_USER;
3. a tool with a side effect (not PURE) succeeded in this turn: TOOL_DONE;
4. the category the model reported, else ANSWERED.

A reported HANDOFF flags the session whatever the category (the flag matters more than
the label).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    ANSWERED = "ANSWERED"
    ASKED_USER = "ASKED_USER"
    TOOL_DONE = "TOOL_DONE"
    KNOWLEDGE_GAP = "KNOWLEDGE_GAP"
    OUT_OF_SCOPE = "OUT_OF_SCOPE"
    SAFETY_REFUSAL = "SAFETY_REFUSAL"
    HANDOFF = "HANDOFF"
    ABUSE_SUSPECTED = "ABUSE_SUSPECTED"
    FAILED = "FAILED"


REPORTABLE: tuple[Category, ...] = (
    Category.ANSWERED,
    Category.ASKED_USER,
    Category.KNOWLEDGE_GAP,
    Category.OUT_OF_SCOPE,
    Category.SAFETY_REFUSAL,
    Category.HANDOFF,
    Category.ABUSE_SUSPECTED,
)
"""What the model may report; TOOL_DONE and FAILED are facts the rules establish."""

MAX_REASON = 300


@dataclass(frozen=True, slots=True)
class Report:
    """What the model reported through ``report_outcome``."""

    category: Category
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TurnFacts:
    confirmation_asked: bool = False
    side_effect_done: bool = False
    reported: Report | None = None
    withheld: str | None = None
    """Why enforcement replaced the reply with the fallback, if it did."""


@dataclass(frozen=True, slots=True)
class Decision:
    category: Category
    handoff: str | None = None
    """Why the session needs a person (``PipelineResult.handoff``), if it does."""


def decide(facts: TurnFacts) -> Decision:
    """The turn's category and hand-off, by the rules of this module's docstring."""
    reported = facts.reported
    reasons: list[str] = []
    if facts.withheld is not None:
        reasons.append(f"reply withheld by enforcement: {facts.withheld}")
    if reported is not None and reported.category is Category.HANDOFF:
        reasons.append(f"the agent handed off: {reported.reason or 'no reason given'}")
    handoff = "; ".join(reasons) or None
    if facts.withheld is not None:
        category = Category.FAILED
    elif facts.confirmation_asked:
        category = Category.ASKED_USER
    elif facts.side_effect_done:
        category = Category.TOOL_DONE
    elif reported is not None:
        category = reported.category
    else:
        category = Category.ANSWERED
    return Decision(category, handoff)


def parse_report(args: Mapping[str, Any]) -> Report | str:
    """The report in ``report_outcome``'s arguments, or what is wrong with them (the model
    is told, and may call again)."""
    raw = args.get("category")
    try:
        category = Category(str(raw).strip().upper())
    except ValueError:
        category = None
    if category is None or category not in REPORTABLE:
        return f"unknown category {raw!r}; expected one of {[c.value for c in REPORTABLE]}"
    reason = args.get("reason")
    text = reason.strip()[:MAX_REASON] if isinstance(reason, str) else ""
    return Report(category, text)
