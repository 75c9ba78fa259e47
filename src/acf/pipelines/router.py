"""The IntentRouter: which rule answers a turn's text, in which lane. Pure.

Rules are tried in file order. While a lane is sticky (``sticky_until_ms`` is later than
now), a matching rule of that lane wins over earlier-listed rules of other lanes, so a
conversation does not ping-pong between lanes; otherwise the first matching rule wins. A
rule with ``overrides_sticky: true`` (talk to a person, stop) counts as one of the sticky
lane's rules. A rule with ``when: {sticky: true}`` applies only while its own lane is
sticky, one with ``when: {after_intent: [...]}`` only right after one of those intents (the
lane still sticky). A rule whose capture or state slots (without a default) cannot be
filled does not apply. A regex rule with several patterns takes the first one that applies.

Rules match the LAST ``MATCH_CHARS`` (2,000) characters of the turn's text (cut at a word
boundary: a word or number the cut went through is dropped, so ``12345`` never reads as
``345``). The last, because the latest messages of a turn correct the earlier ones ("where
is order 1001 ... sorry, I meant 1002"); the cap, because routing runs on the event loop and
a rule's regex may be slow on long texts: it bounds what any rule costs per turn. ``{text}``
in templates is still the whole text.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acf.pipelines import templates
from acf.pipelines.rules_model import LATE_SLOTS, RuleFields, RulesConfig

MATCH_CHARS = 2000
"""How much of the turn's text (its end) the rules match."""
_PARTIAL_WORD = re.compile(r"\S*")


@dataclass(frozen=True, slots=True)
class Route:
    rule: RuleFields
    captures: Mapping[str, str]
    lane: str
    intent: str
    confidence: float
    sticky_until_ms: int | None
    """Until when the route's lane stays sticky; ``None``: it does not stick."""
    by_sticky_lane: bool = False
    """Chosen over an earlier-listed matching rule because a lane was sticky."""


def active_lane(lane: str | None, sticky_until_ms: int | None, now_ms: int) -> str | None:
    """The sticky lane, if one still holds."""
    if lane is None or sticky_until_ms is None or now_ms >= sticky_until_ms:
        return None
    return lane


def matched_text(text: str, limit: int = MATCH_CHARS) -> str:
    """The end of ``text`` the rules match: its last ``limit`` characters, less the partial
    word at the cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    if not text[cut - 1].isspace():
        partial = _PARTIAL_WORD.match(text, cut)
        cut = partial.end() if partial else cut
    return text[cut:].lstrip()


def needed_templates(rule: RuleFields) -> list[str]:
    """Every template the rule fills before (or without) a tool result."""
    texts = [*rule.reply, *templates.strings(rule.state)]
    if rule.handoff is not None:
        texts.append(rule.handoff)
    if rule.call is not None:
        texts += templates.strings(rule.call.args)
    if rule.confirm is not None:
        texts += [rule.confirm.prompt, *templates.strings(rule.confirm.args)]
    return texts


def match_rule(
    rule: RuleFields, text: str, state: Mapping[str, Any] | None = None
) -> dict[str, str] | None:
    """The rule's captures when it matches ``text`` with every slot it needs, else None."""
    needed = needed_templates(rule)
    for pattern in rule.match.patterns():
        found = pattern.search(text)
        if found is None:
            continue
        captures = {k: v for k, v in found.groupdict().items() if v is not None}
        values = {**captures, "state": state or {}, "text": text, "lane": rule.lane}
        values["intent"] = rule.intent_name
        if not templates.missing(needed, values, LATE_SLOTS):
            return captures
    return None


def _eligible(rule: RuleFields, sticky: str | None, last_intent: str | None) -> bool:
    if rule.when.sticky and rule.lane != sticky:
        return False
    return not rule.when.after_intent or (
        sticky is not None and last_intent in rule.when.after_intent
    )


def route(
    text: str,
    config: RulesConfig,
    lane: str | None,
    sticky_until_ms: int | None,
    now_ms: int,
    *,
    last_intent: str | None = None,
    state: Mapping[str, Any] | None = None,
) -> Route | None:
    """The rule that answers ``text``, or ``None`` (the fallback answers)."""
    sticky = active_lane(lane, sticky_until_ms, now_ms)
    text = matched_text(text)
    first: tuple[RuleFields, dict[str, str]] | None = None
    for rule in config.rules:
        if not _eligible(rule, sticky, last_intent):
            continue
        captures = match_rule(rule, text, state)
        if captures is None:
            continue
        if sticky is None or rule.lane == sticky or rule.overrides_sticky:
            return _route(config, rule, captures, now_ms, by_sticky_lane=first is not None)
        if first is None:
            first = (rule, captures)
    return None if first is None else _route(config, *first, now_ms)


def _route(
    config: RulesConfig,
    rule: RuleFields,
    captures: dict[str, str],
    now_ms: int,
    by_sticky_lane: bool = False,
) -> Route:
    seconds = config.sticky_seconds if rule.sticky_seconds is None else rule.sticky_seconds
    return Route(
        rule=rule,
        captures=captures,
        lane=rule.lane,
        intent=rule.intent_name,
        confidence=rule.score,
        sticky_until_ms=now_ms + seconds * 1000 if seconds else None,
        by_sticky_lane=by_sticky_lane,
    )
