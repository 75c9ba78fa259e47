"""A tenant's settings for people in the loop: the human handoff (``handoff:``) and the abuse
firewall (``firewall:``). Read from the served file, like ``limits``.

```yaml
version: 1
tenants:
  demo:
    handoff:
      notice: "Thanks, a member of our team will take it from here."
      after_fallbacks: 3
      sla_s: 300
      still_waiting_after_s: 900
    firewall:
      limits: {per_minute: 20, per_day: 500}
      banned_terms: {terms: [idiot, moron], count: 2}
      cooldown_s: 600
    agents:
      support:
        pipeline: {kind: rules, rules_file: support_rules.yaml}
```
"""

from typing import Self

from pydantic import Field, field_validator, model_validator

from acf.config.tools import ConfigModel
from acf.domain.abuse import (
    RECENT_MESSAGES,
    AbuseRules,
    CountRule,
    CustomerLimits,
    PatternsRule,
    RepeatRule,
    TermsRule,
)
from acf.domain.abuse_text import pattern_problem
from acf.domain.channels import Channel
from acf.domain.handoff import HandoffPolicy, PeoplePolicy

DEFAULT_INJECTION_PATTERNS = (
    r"\bsystem prompt\b",
    r"\b(ignore|disregard|forget) (all |any )?(of )?(the |your )?"
    r"(previous|prior|above|earlier|preceding) (instructions|prompts?|directions)\b",
    r"\b(ignore|disregard|forget) (all |any )?(of )?your (instructions|prompts?|rules)\b",
    r"\b(reveal|print|output|dump|leak|show me) your (initial |original |hidden |secret |"
    r"full |exact )?(instructions|prompt)\b",
    r"\byou are now (in )?(developer|dan|jailbreak|god) mode\b",
    r"</?(system|assistant)>",
)
"""What customers probing the agent write, and nothing an ordinary question does: the
agent's prompt or its own instructions, never "the instructions for the X200"."""

COUNTER_RETENTION_S = 2 * 86_400
"""How long the firewall's counters are kept (``ModeWatchSettings.keep_counters_ms``): no
rule's window may be longer."""


class HandoffFields(ConfigModel):
    notice: str | None = "Thanks for your patience: a member of our team will take it from here."
    """Sent once when the session is handed to a person (None: nothing is sent)."""
    after_fallbacks: int = Field(default=3, ge=0)
    """Hand off after this many fallback answers in one session (0: never)."""
    sla_s: int = Field(default=300, ge=1)
    """A handoff waiting unclaimed this long raises ``handoff.sla_breached`` and the metric."""
    still_waiting_after_s: int = Field(default=900, ge=1)
    still_waiting_notice: str | None = (
        "We haven't forgotten you: someone from our team will be with you shortly."
    )
    """Sent once if nobody claimed the handoff ``still_waiting_after_s`` after it opened."""
    claim_ttl_s: int = Field(default=900, ge=10, le=86_400)
    """How long an operator's claim lasts without a reply or a renewal."""

    def policy(self) -> HandoffPolicy:
        return HandoffPolicy(
            notice=self.notice,
            after_fallbacks=self.after_fallbacks,
            sla_ms=self.sla_s * 1000,
            still_waiting_after_ms=self.still_waiting_after_s * 1000,
            still_waiting_notice=self.still_waiting_notice,
            claim_ttl_ms=self.claim_ttl_s * 1000,
        )


class CustomerLimitFields(ConfigModel):
    per_minute: int = Field(default=30, ge=1)
    per_day: int = Field(default=1000, ge=1)

    @model_validator(mode="after")
    def _day_holds_a_minute(self) -> Self:
        if self.per_day < self.per_minute:
            raise ValueError(
                f"per_day ({self.per_day}) must be at least per_minute ({self.per_minute})"
            )
        return self

    def limits(self) -> CustomerLimits:
        return CustomerLimits(self.per_minute, self.per_day)


_COUNT_HELP = (
    f"at most {RECENT_MESSAGES}: the firewall reads the session's {RECENT_MESSAGES} newest messages"
)


class CountRuleFields(ConfigModel):
    enabled: bool = True
    count: int = Field(default=3, ge=1)
    within_s: int = Field(default=600, ge=1, le=COUNTER_RETENTION_S)
    """The window; at most two days (how long the counters are kept)."""


class MessageRuleFields(CountRuleFields):
    """A rule counting messages: its count fits in the messages the firewall reads."""

    @field_validator("count")
    @classmethod
    def _fits_the_recent_messages(cls, count: int) -> int:
        if count > RECENT_MESSAGES:
            raise ValueError(f"count {count} is too large: {_COUNT_HELP}")
        return count


class RepeatedFields(MessageRuleFields):
    count: int = Field(default=5, ge=2)
    within_s: int = Field(default=300, ge=1, le=COUNTER_RETENTION_S)
    min_chars: int = Field(default=8, ge=1)
    """Shorter messages ("Yes", "1", "👍") are never counted as repeats."""


class TermsFields(MessageRuleFields):
    terms: list[str] = Field(default_factory=list)
    """Whole words or phrases, any case; a message holding one counts once."""
    count: int = Field(default=2, ge=1)

    @field_validator("terms")
    @classmethod
    def _not_blank(cls, terms: list[str]) -> list[str]:
        if any(not term.strip() for term in terms):
            raise ValueError("a banned term is blank: it would match nothing")
        return terms


class InjectionFields(MessageRuleFields):
    patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_INJECTION_PATTERNS))
    """RE2 regular expressions, searched in any case (no look-around, no
    back-references); one that can match the empty string is refused."""

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            problem = pattern_problem(pattern)
            if problem is not None:
                raise ValueError(f"injection pattern {pattern!r} {problem}")
        return patterns


class PolicyBlocksFields(CountRuleFields):
    within_s: int = Field(default=3600, ge=1, le=COUNTER_RETENTION_S)


class FirewallFields(ConfigModel):
    enabled: bool = True
    limits: CustomerLimitFields = Field(default_factory=CustomerLimitFields)
    """Messages per customer per channel; over them the flood detector fires."""
    channels: dict[Channel, CustomerLimitFields] = Field(default_factory=dict)
    """Per-channel limits over ``limits``."""
    flood: bool = True
    repeated: RepeatedFields = Field(default_factory=RepeatedFields)
    banned_terms: TermsFields = Field(default_factory=TermsFields)
    injection: InjectionFields = Field(default_factory=InjectionFields)
    policy_blocks: PolicyBlocksFields = Field(default_factory=PolicyBlocksFields)
    cooldown_s: int = Field(default=600, ge=1)
    notice: str | None = (
        "We've paused replies for a few minutes. Your messages are saved and we'll answer "
        "them when the pause ends."
    )
    """Sent once when a cool-down starts (None: nothing is sent)."""
    auto_block_after: int = Field(default=3, ge=0)
    """After this many cool-downs of one customer in a UTC day, their next finding puts them
    on the block list instead (0: never)."""
    auto_block_s: int = Field(default=86_400, ge=0)
    """How long an automatic block lasts (0: until an operator lifts it)."""

    def rules(self) -> AbuseRules:
        """The domain's rules."""

        def count(fields: CountRuleFields) -> CountRule:
            return CountRule(fields.enabled, fields.count, fields.within_s * 1000)

        return AbuseRules(
            enabled=self.enabled,
            limits=self.limits.limits(),
            flood_enabled=self.flood,
            repeated=RepeatRule(
                self.repeated.enabled,
                self.repeated.count,
                self.repeated.within_s * 1000,
                self.repeated.min_chars,
            ),
            banned_terms=TermsRule(
                self.banned_terms.enabled,
                self.banned_terms.count,
                self.banned_terms.within_s * 1000,
                tuple(self.banned_terms.terms),
            ),
            injection=PatternsRule(
                self.injection.enabled,
                self.injection.count,
                self.injection.within_s * 1000,
                tuple(self.injection.patterns),
            ),
            policy_blocks=count(self.policy_blocks),
            cooldown_ms=self.cooldown_s * 1000,
            auto_block_after=self.auto_block_after,
            auto_block_ms=self.auto_block_s * 1000 if self.auto_block_s else None,
            notice=self.notice,
            channel_limits={c.value: f.limits() for c, f in self.channels.items()},
        )


def people_policy(handoff: HandoffFields, firewall: FirewallFields) -> PeoplePolicy:
    """A tenant's ``handoff:`` and ``firewall:`` as the service reads them."""
    return PeoplePolicy(handoff.policy(), firewall.rules())
