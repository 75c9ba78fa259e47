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

import re

from pydantic import Field, field_validator

from acf.config.tools import ConfigModel
from acf.domain.abuse import AbuseRules, CountRule, CustomerLimits, PatternsRule, TermsRule
from acf.domain.channels import Channel
from acf.domain.handoff import HandoffPolicy, PeoplePolicy

DEFAULT_INJECTION_PATTERNS = (
    r"ignore (all |any )?(the )?(previous|prior|above) (instructions|prompts?|rules)",
    r"disregard (all |any )?(the )?(previous|prior|above|your) (instructions|rules)",
    r"(reveal|print|show|repeat) (me )?(your|the) (system )?(prompt|instructions)",
    r"you are now (in )?(developer|dan|jailbreak) mode",
    r"</?(system|assistant)>",
)


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

    def limits(self) -> CustomerLimits:
        return CustomerLimits(self.per_minute, self.per_day)


class CountRuleFields(ConfigModel):
    enabled: bool = True
    count: int = Field(default=3, ge=1)
    within_s: int = Field(default=600, ge=1)


class RepeatedFields(CountRuleFields):
    count: int = Field(default=5, ge=2)
    within_s: int = Field(default=300, ge=1)


class TermsFields(CountRuleFields):
    terms: list[str] = Field(default_factory=list)
    count: int = Field(default=2, ge=1)


class InjectionFields(CountRuleFields):
    patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_INJECTION_PATTERNS))

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a regular expression: {exc}") from exc
        return patterns


class PolicyBlocksFields(CountRuleFields):
    within_s: int = Field(default=3600, ge=1)


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
    """Cool-downs of one customer in a UTC day that put them on the block list (0: never)."""

    def rules(self) -> AbuseRules:
        """The domain's rules."""

        def count(fields: CountRuleFields) -> CountRule:
            return CountRule(fields.enabled, fields.count, fields.within_s * 1000)

        return AbuseRules(
            enabled=self.enabled,
            limits=self.limits.limits(),
            flood_enabled=self.flood,
            repeated=count(self.repeated),
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
            notice=self.notice,
            channel_limits={c.value: f.limits() for c, f in self.channels.items()},
        )


def people_policy(handoff: HandoffFields, firewall: FirewallFields) -> PeoplePolicy:
    """A tenant's ``handoff:`` and ``firewall:`` as the service reads them."""
    return PeoplePolicy(handoff.policy(), firewall.rules())
