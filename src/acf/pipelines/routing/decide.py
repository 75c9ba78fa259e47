"""Which route a turn takes, and why: the router's decision (DESIGN §16, seed 004 Story 4).
Pure: the caller supplies what it looked up (the sticky route, which routes are usable).

In order:

1. ``enabled`` false: the ``default`` route (``disabled``).
2. A REPLAY turn re-runs the route whose dead letter it replays (``replay``).
3. A rule's command starts the text (``/agent``, ``@agent``; case-insensitive, followed
   by a space or the end): that rule's route (``command``), and the route sees the text
   without the command. Commands are tried before any keyword or regex: a customer who
   types one means it, whatever else the text holds.
4. The route an agent session is still open on (``sticky``): only a command beats it
   (``/llm`` leaves an agent conversation); a word of the customer's answer to the agent's
   question that happens to be another route's keyword does not.
5. The first rule, in order, whose keywords (as whole words, case-insensitive) or regex
   (case-insensitive) match the end of the text (``keyword``, ``regex``). Like the rules
   pipeline's router, they see the last ``MATCH_CHARS`` characters only: recent messages
   correct earlier ones, and the bound caps what a slow regex costs per turn.
6. The route the classifier picked (``classifier``): asked only when some rule has a
   ``classify`` description, the text is not blank and nothing above decided the turn
   (``classifier_needed``); its answer counts only when it names a classifying rule's
   route (the first such rule is the one reported).
7. The ``default`` route (``default``).

Then, when the chosen route is not available (its service's circuit is open or its health
check fails) and a different ``fallback`` is set: the fallback (``fallback``,
``fallback_from`` naming the route it replaces). The text stays without its command.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from acf.config.pipelines import RouteRuleFields
from acf.pipelines.router import MATCH_CHARS, matched_text


class Reason(StrEnum):
    DISABLED = "disabled"
    REPLAY = "replay"
    COMMAND = "command"
    KEYWORD = "keyword"
    REGEX = "regex"
    STICKY = "sticky"
    CLASSIFIER = "classifier"
    DEFAULT = "default"
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One routing rule, compiled: ``keywords`` as one pattern of whole words;
    ``classify``, the description the classifier reads."""

    route: str
    commands: tuple[str, ...] = ()
    keywords: re.Pattern[str] | None = None
    regex: re.Pattern[str] | None = None
    classify: str | None = None

    @classmethod
    def of(
        cls,
        route: str,
        commands: Sequence[str] = (),
        keywords: Sequence[str] = (),
        regex: str | None = None,
        classify: str | None = None,
    ) -> "RouteRule":
        return cls(
            route,
            tuple(c.casefold() for c in commands),
            keyword_pattern(keywords),
            None if regex is None else re.compile(regex, re.IGNORECASE),
            classify,
        )

    @classmethod
    def from_fields(cls, fields: RouteRuleFields) -> "RouteRule":
        return cls.of(fields.route, fields.commands, fields.keywords, fields.regex, fields.classify)


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any of ``keywords`` as whole words (a keyword
    of several words matches them with any whitespace between)."""
    words = [k.split() for k in keywords if k.strip()]
    if not words:
        return None
    alternatives = "|".join(r"\s+".join(re.escape(w) for w in ws) for ws in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Decision:
    route: str
    reason: Reason
    rule_index: int | None
    """The rule that matched (``command``, ``keyword``, ``regex``, ``classifier``), also
    after a fallback."""
    text_for_route: str
    """The turn's text as the route sees it: without the command that chose the route."""
    fallback_from: str | None = None
    command: str | None = None
    """The command taken off the text, as the customer typed it."""


def leading_command(text: str, commands: Sequence[str]) -> tuple[str, str] | None:
    """The command of ``commands`` (casefolded) that starts ``text``, as typed, and the rest
    of the text (stripped); None when no command starts it."""
    stripped = text.lstrip()
    for command in commands:
        head = stripped[: len(command)]
        after = stripped[len(command) : len(command) + 1]
        if head.casefold() == command and (not after or after.isspace()):
            return head, stripped[len(command) :].strip()
    return None


def _commanded(
    text: str, rules: Sequence[RouteRule]
) -> tuple[int, RouteRule, Reason, str, str | None] | None:
    for index, rule in enumerate(rules):
        found = leading_command(text, rule.commands)
        if found is not None:
            return index, rule, Reason.COMMAND, found[1], found[0]
    return None


def _matched(
    text: str, rules: Sequence[RouteRule]
) -> tuple[int, RouteRule, Reason, str, str | None] | None:
    tail = matched_text(text, MATCH_CHARS)
    for index, rule in enumerate(rules):
        if rule.keywords is not None and rule.keywords.search(tail):
            return index, rule, Reason.KEYWORD, text, None
        if rule.regex is not None and rule.regex.search(tail):
            return index, rule, Reason.REGEX, text, None
    return None


def _explicit(
    text: str,
    rules: Sequence[RouteRule],
    *,
    enabled: bool,
    default: str,
    sticky_route: str | None,
    replay_route: str | None,
) -> Decision | None:
    """The decision of steps 1 to 5 (the switch, a replay, a command, stickiness, a keyword
    or regex), or None when none of them decides."""
    if not enabled:
        return Decision(default, Reason.DISABLED, None, text)
    if replay_route is not None:
        return Decision(replay_route, Reason.REPLAY, None, text)
    if (found := _commanded(text, rules)) is not None:
        index, rule, reason, routed_text, command = found
        return Decision(rule.route, reason, index, routed_text, command=command)
    if sticky_route is not None:
        return Decision(sticky_route, Reason.STICKY, None, text)
    if (found := _matched(text, rules)) is not None:
        index, rule, reason, routed_text, command = found
        return Decision(rule.route, reason, index, routed_text, command=command)
    return None


def classifying(rules: Sequence[RouteRule]) -> dict[str, str]:
    """The routes the classifier may pick, each with its description (those of several
    rules of one route joined), in the rules' order."""
    found: dict[str, list[str]] = {}
    for rule in rules:
        if rule.classify is not None:
            found.setdefault(rule.route, []).append(rule.classify)
    return {route: "; ".join(descriptions) for route, descriptions in found.items()}


def classifier_needed(
    text: str,
    rules: Sequence[RouteRule],
    *,
    enabled: bool,
    sticky_route: str | None,
    replay_route: str | None = None,
) -> bool:
    """Whether ``decide`` would use the classifier's answer for this turn: some rule
    classifies, the text is not blank, and no step before the classifier decides. When
    False, the model need not be asked."""
    if not text.strip() or all(rule.classify is None for rule in rules):
        return False
    explicit = _explicit(
        text,
        rules,
        enabled=enabled,
        default="",
        sticky_route=sticky_route,
        replay_route=replay_route,
    )
    return explicit is None


def _classified(route: str | None, text: str, rules: Sequence[RouteRule]) -> Decision | None:
    for index, rule in enumerate(rules):
        if rule.classify is not None and rule.route == route:
            return Decision(rule.route, Reason.CLASSIFIER, index, text)
    return None


def decide(
    text: str,
    rules: Sequence[RouteRule],
    *,
    enabled: bool,
    default: str,
    sticky_route: str | None,
    available: Callable[[str], bool],
    fallback: str | None,
    replay_route: str | None = None,
    classified: str | None = None,
) -> Decision:
    """The route of a turn whose text is ``text`` (see the module's docstring).
    ``classified``: the route the classifier picked (None: it was not asked, found no
    route or failed); ignored unless ``classifier_needed`` holds and a classifying rule
    names it."""
    chosen = _explicit(
        text,
        rules,
        enabled=enabled,
        default=default,
        sticky_route=sticky_route,
        replay_route=replay_route,
    )
    if chosen is None and text.strip():
        chosen = _classified(classified, text, rules)
    if chosen is None:
        chosen = Decision(default, Reason.DEFAULT, None, text)
    if fallback is None or fallback == chosen.route or available(chosen.route):
        return chosen
    return Decision(
        fallback,
        Reason.FALLBACK,
        chosen.rule_index,
        chosen.text_for_route,
        fallback_from=chosen.route,
        command=chosen.command,
    )
