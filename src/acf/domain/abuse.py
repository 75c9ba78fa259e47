"""The abuse firewall's detectors: pure functions of a customer's recent messages, counts and
outcomes, each returning a ``Finding`` or None (DESIGN §15).

The rules are per tenant (``firewall:`` in the configuration, ``acf.config.people``).

The message detectors (repeated, banned terms, injection storm) judge the newest message:
each fires only when that message matches, counting the matching messages of its window
received since the session last entered agent mode (``since_ms``: messages a cool-down
already answered for never count again). Only the newest text is matched unless it
matches; then older ones are, newest first, until the rule's count is reached. Texts are
matched by ``acf.domain.abuse_text`` (RE2, the first ``SCAN_CHARS`` characters).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from acf.domain.abuse_text import banned_term_in, matches_pattern, scanned


class Detector(StrEnum):
    FLOOD = "flood"
    REPEATED = "repeated"
    BANNED_TERMS = "banned_terms"
    INJECTION_STORM = "injection_storm"
    POLICY_BLOCKS = "policy_blocks"


MESSAGE_DETECTORS = frozenset({Detector.REPEATED, Detector.BANNED_TERMS, Detector.INJECTION_STORM})
"""The detectors that read the session's recent messages."""

RECENT_MESSAGES = 20
"""How many of the session's newest messages the message detectors read: no rule's
``count`` may exceed it (``acf.config.people`` checks)."""

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
class RepeatRule(CountRule):
    min_chars: int = 8
    """Shorter messages (normalised: "Yes", "1", "👍") never count as repeats: customers
    send them again and again in guided flows."""


@dataclass(frozen=True, slots=True)
class TermsRule(CountRule):
    terms: tuple[str, ...] = ()
    """Case-insensitive whole words or phrases; empty: the detector is off."""


@dataclass(frozen=True, slots=True)
class PatternsRule(CountRule):
    patterns: tuple[str, ...] = ()
    """RE2 regular expressions (case-insensitive), searched in each message's text."""


@dataclass(frozen=True, slots=True)
class AbuseRules:
    enabled: bool = True
    limits: CustomerLimits = field(default_factory=CustomerLimits)
    flood_enabled: bool = True
    repeated: RepeatRule = field(default_factory=lambda: RepeatRule(count=5, within_ms=300_000))
    banned_terms: TermsRule = field(default_factory=TermsRule)
    injection: PatternsRule = field(default_factory=PatternsRule)
    policy_blocks: CountRule = field(default_factory=lambda: CountRule(within_ms=3_600_000))
    cooldown_ms: int = 600_000
    auto_block_after: int = 3
    """After this many cool-downs of one customer in a UTC day, their next finding blocks
    them (0: never)."""
    auto_block_ms: int | None = 86_400_000
    """How long an automatic block lasts (None: until an operator lifts it)."""
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
    aside (the first ``SCAN_CHARS`` characters)."""
    collapsed = scanned(text).casefold()
    return collapsed.strip(_EDGE_PUNCTUATION) or collapsed


_EDGE_PUNCTUATION = " .,;:!?¡¿…'\"()[]{}-"


def _seconds(ms: int) -> str:
    return f"{ms // 1000} s"


def _matching(
    recent: Sequence[Said],
    count: int,
    within_ms: int,
    since_ms: int | None,
    matches: Callable[[Said], bool],
) -> int:
    """0 unless the newest message of ``recent`` (oldest first) matches; else how many
    messages match among those within ``within_ms`` of it and received at or after
    ``since_ms``, counted newest first up to ``count`` (older texts are matched only while
    the count is short of it)."""
    if not recent or not matches(recent[-1]):
        return 0
    newest = recent[-1].at_ms
    hits = 1
    for said in reversed(recent[:-1]):
        if hits >= count:
            break
        if said.at_ms <= newest - within_ms or (since_ms is not None and said.at_ms < since_ms):
            continue
        if matches(said):
            hits += 1
    return hits


def repeated(
    recent: Sequence[Said], rule: RepeatRule, since_ms: int | None = None
) -> Finding | None:
    """The newest message (normalised, at least ``rule.min_chars`` long) sent
    ``rule.count`` times or more within the window, since ``since_ms``."""
    target = normalise(recent[-1].text) if recent else ""
    if not rule.enabled or len(target) < max(rule.min_chars, 1):
        return None
    same = _matching(
        recent, rule.count, rule.within_ms, since_ms, lambda s: normalise(s.text) == target
    )
    if same < rule.count:
        return None
    return Finding(
        Detector.REPEATED, f"the same message {same} times within {_seconds(rule.within_ms)}"
    )


def banned_terms(
    recent: Sequence[Said], rule: TermsRule, since_ms: int | None = None
) -> Finding | None:
    """The newest message holds one of the terms (whole words or phrases, any case) and
    ``rule.count`` messages or more of the window since ``since_ms`` do. The detail names
    the newest message's term, nothing else of what was written."""
    if not rule.enabled or not recent:
        return None
    named = banned_term_in(rule.terms, scanned(recent[-1].text))
    if named is None:
        return None
    hits = _matching(
        recent,
        rule.count,
        rule.within_ms,
        since_ms,
        lambda s: banned_term_in(rule.terms, scanned(s.text)) is not None,
    )
    if hits < rule.count:
        return None
    return Finding(
        Detector.BANNED_TERMS,
        f"banned term {named!r} in {hits} messages within {_seconds(rule.within_ms)}",
    )


def injection_storm(
    recent: Sequence[Said], rule: PatternsRule, since_ms: int | None = None
) -> Finding | None:
    """The newest message matches one of the patterns (searched, any case) and
    ``rule.count`` messages or more of the window since ``since_ms`` do: a customer probing
    the agent's instructions."""
    if not rule.enabled or not rule.patterns:
        return None
    hits = _matching(
        recent,
        rule.count,
        rule.within_ms,
        since_ms,
        lambda s: matches_pattern(rule.patterns, scanned(s.text)),
    )
    if hits < rule.count:
        return None
    return Finding(
        Detector.INJECTION_STORM,
        f"{hits} messages matched injection patterns within {_seconds(rule.within_ms)}",
    )


def reads_messages(rules: AbuseRules) -> bool:
    """Whether a message detector is on (the firewall reads the recent messages only
    then)."""
    return rules.enabled and (
        rules.repeated.enabled
        or (rules.banned_terms.enabled and any(t.strip() for t in rules.banned_terms.terms))
        or (rules.injection.enabled and bool(rules.injection.patterns))
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
    rules: AbuseRules,
    channel: str,
    counts: Counted,
    recent: Sequence[Said],
    since_ms: int | None = None,
) -> Finding | None:
    """The first finding, in a fixed order (flood, repeated, banned terms, injection storm),
    on the newest message of ``recent`` (oldest first; empty when no message detector is
    on) and the customer's ``counts`` on ``channel``; the message detectors count messages
    received since ``since_ms`` (when the session entered agent mode; None: all). None when
    the firewall is off or nothing fired."""
    if not rules.enabled:
        return None
    checks: tuple[Callable[[], Finding | None], ...] = (
        lambda: flood(counts, rules.limits_for(channel)) if rules.flood_enabled else None,
        lambda: repeated(recent, rules.repeated, since_ms),
        lambda: banned_terms(recent, rules.banned_terms, since_ms),
        lambda: injection_storm(recent, rules.injection, since_ms),
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
