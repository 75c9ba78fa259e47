"""The abuse firewall's detectors: pure functions of a customer's recent messages, counts and
outcomes, each returning a ``Finding`` or None (DESIGN §15).

The rules are per tenant (``firewall:`` in the configuration, ``acf.config.people``).
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Detector(StrEnum):
    FLOOD = "flood"
    REPEATED = "repeated"
    BANNED_TERMS = "banned_terms"
    INJECTION_STORM = "injection_storm"
    POLICY_BLOCKS = "policy_blocks"


ABUSE_CATEGORY = "ABUSE_SUSPECTED"
"""The TurnRecord category of a turn the firewall touched (held, dropped, refused)."""


@dataclass(frozen=True, slots=True)
class CustomerLimits:
    per_minute: int = 30
    per_day: int = 1000


@dataclass(frozen=True, slots=True)
class CountRule:
    """Fires at ``count`` matching messages (or outcomes) within ``within_ms``."""

    enabled: bool = True
    count: int = 3
    within_ms: int = 600_000


@dataclass(frozen=True, slots=True)
class TermsRule(CountRule):
    terms: tuple[str, ...] = ()
    """Case-insensitive whole words or phrases; empty: the detector is off."""


@dataclass(frozen=True, slots=True)
class PatternsRule(CountRule):
    patterns: tuple[str, ...] = ()
    """Regular expressions (case-insensitive), searched in each message's text."""


@dataclass(frozen=True, slots=True)
class AbuseRules:
    enabled: bool = True
    limits: CustomerLimits = field(default_factory=CustomerLimits)
    flood_enabled: bool = True
    repeated: CountRule = field(default_factory=lambda: CountRule(count=5, within_ms=300_000))
    banned_terms: TermsRule = field(default_factory=TermsRule)
    injection: PatternsRule = field(default_factory=PatternsRule)
    policy_blocks: CountRule = field(default_factory=lambda: CountRule(within_ms=3_600_000))
    cooldown_ms: int = 600_000
    auto_block_after: int = 3
    """Cool-downs of one customer in a UTC day that block them (0: never)."""
    notice: str | None = (
        "We've paused replies for a few minutes. Your messages are saved and we'll answer "
        "them when the pause ends."
    )
    """Sent once when a cool-down starts (None: nothing)."""
    channel_limits: Mapping[str, CustomerLimits] = field(default_factory=dict)
    """Per channel (its value, e.g. ``"sms"``), over ``limits``."""

    def limits_for(self, channel: str) -> CustomerLimits:
        return self.channel_limits.get(channel, self.limits)


@dataclass(frozen=True, slots=True)
class Finding:
    detector: Detector
    detail: str
    """What fired, for the audit and the console (counts and the rule; never the text of a
    banned term match beyond the term itself)."""
    per_day: bool = False
    """A per-day flood: the cool-down lasts until the next UTC day."""


MINUTE_MS = 60_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Said:
    """One of the customer's recent messages, as the detectors read it."""

    at_ms: int
    text: str | None


class Counted(Protocol):
    """A customer's message counts (``acf.ports.firewall.RateCounts``)."""

    @property
    def per_minute(self) -> float: ...

    @property
    def day(self) -> int: ...


def flood(counts: Counted, limits: CustomerLimits) -> Finding | None:
    """More messages than the customer's limits: over ``per_day`` in the UTC day (a per-day
    flood), else over ``per_minute`` in the sliding minute."""
    if counts.day > limits.per_day:
        return Finding(
            Detector.FLOOD, f"{counts.day} messages today (limit {limits.per_day})", per_day=True
        )
    if counts.per_minute > limits.per_minute:
        return Finding(
            Detector.FLOOD,
            f"{round(counts.per_minute)} messages in a minute (limit {limits.per_minute})",
        )
    return None


def normalise(text: str | None) -> str:
    """What makes two messages "the same": case, spacing and the punctuation around them
    aside."""
    if not text:
        return ""
    collapsed = " ".join(text.casefold().split())
    return collapsed.strip(_EDGE_PUNCTUATION) or collapsed


_EDGE_PUNCTUATION = " .,;:!?¡¿…'\"()[]{}-"


def _window(recent: Sequence[Said], within_ms: int) -> list[Said]:
    """The messages within ``within_ms`` of the newest one."""
    if not recent:
        return []
    newest = max(s.at_ms for s in recent)
    return [s for s in recent if s.at_ms > newest - within_ms]


def _seconds(ms: int) -> str:
    return f"{ms // 1000} s"


def repeated(recent: Sequence[Said], text: str | None, rule: CountRule) -> Finding | None:
    """``text`` (normalised) sent ``rule.count`` times or more within the window (``recent``
    includes the message itself)."""
    target = normalise(text)
    if not rule.enabled or not target:
        return None
    same = sum(1 for s in _window(recent, rule.within_ms) if normalise(s.text) == target)
    if same < rule.count:
        return None
    return Finding(
        Detector.REPEATED, f"the same message {same} times within {_seconds(rule.within_ms)}"
    )


def _term_pattern(term: str) -> re.Pattern[str]:
    words = (re.escape(word) for word in term.split())
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def banned_terms(recent: Sequence[Said], rule: TermsRule) -> Finding | None:
    """``rule.count`` messages or more within the window holding one of the terms (whole
    words or phrases, any case). The detail names the newest message's term, nothing else
    of what was written."""
    terms = [(term, _term_pattern(term)) for term in rule.terms if term.strip()]
    if not rule.enabled or not terms:
        return None
    hits = 0
    named = ""
    for said in _window(recent, rule.within_ms):
        matched = next((term for term, p in terms if said.text and p.search(said.text)), None)
        if matched is not None:
            hits += 1
            named = matched
    if hits < rule.count:
        return None
    return Finding(
        Detector.BANNED_TERMS,
        f"banned term {named!r} in {hits} messages within {_seconds(rule.within_ms)}",
    )


def injection_storm(recent: Sequence[Said], rule: PatternsRule) -> Finding | None:
    """``rule.count`` messages or more within the window matching one of the patterns
    (searched, any case): a customer probing the agent's instructions."""
    patterns = [re.compile(p, re.IGNORECASE) for p in rule.patterns]
    if not rule.enabled or not patterns:
        return None
    hits = sum(
        1
        for said in _window(recent, rule.within_ms)
        if said.text and any(p.search(said.text) for p in patterns)
    )
    if hits < rule.count:
        return None
    return Finding(
        Detector.INJECTION_STORM,
        f"{hits} messages matched injection patterns within {_seconds(rule.within_ms)}",
    )


def policy_blocks(refusals: float, rule: CountRule) -> Finding | None:
    """``rule.count`` refusals or more (the agent's safety refusals and enforcement hits)
    within the window; ``refusals`` is the count the caller estimated over it."""
    if not rule.enabled or refusals < rule.count:
        return None
    return Finding(
        Detector.POLICY_BLOCKS,
        f"{round(refusals)} refused requests within {_seconds(rule.within_ms)}",
    )


SAFETY_REFUSAL = "SAFETY_REFUSAL"


def is_policy_block(category: str | None, refused_tools: int = 0) -> bool:
    """Whether a turn counts for ``policy_blocks``: its record's category is a safety
    refusal, or the enforcement refused one of its tool calls (``tool.refused``)."""
    return (category or "").upper() == SAFETY_REFUSAL or refused_tools > 0


def inspect(
    rules: AbuseRules, channel: str, counts: Counted, recent: Sequence[Said]
) -> Finding | None:
    """The first finding, in a fixed order (flood, repeated, banned terms, injection storm),
    on the newest message of ``recent`` (oldest first) and the customer's ``counts`` on
    ``channel``; None when the firewall is off or nothing fired."""
    if not rules.enabled:
        return None
    text = recent[-1].text if recent else None
    checks: tuple[Callable[[], Finding | None], ...] = (
        lambda: flood(counts, rules.limits_for(channel)) if rules.flood_enabled else None,
        lambda: repeated(recent, text, rules.repeated),
        lambda: banned_terms(recent, rules.banned_terms),
        lambda: injection_storm(recent, rules.injection),
    )
    for check in checks:
        finding = check()
        if finding is not None:
            return finding
    return None


def cooldown_until(finding: Finding, rules: AbuseRules, now_ms: int) -> int:
    """When the cool-down a finding starts at ``now_ms`` ends: the next UTC day's start for a
    per-day flood, else ``rules.cooldown_ms`` later."""
    if finding.per_day:
        return (now_ms // DAY_MS + 1) * DAY_MS
    return now_ms + rules.cooldown_ms
