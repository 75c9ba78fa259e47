"""The abuse firewall's detectors: pure functions of a customer's recent messages, counts and
outcomes, each returning a ``Finding`` or None (DESIGN §15).

The rules are per tenant (``firewall:`` in the configuration, ``acf.config.people``).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


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
