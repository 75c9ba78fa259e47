"""The human handoff's policy and the pure decisions the mode watch takes on it."""

from collections.abc import Callable
from dataclasses import dataclass, field

from acf.domain.abuse import AbuseRules
from acf.domain.ids import TenantId


@dataclass(frozen=True, slots=True)
class HandoffPolicy:
    notice: str | None = "Thanks for your patience: a member of our team will take it from here."
    """Sent once when the session is handed off (None: nothing)."""
    after_fallbacks: int = 3
    """Hand off after this many fallback answers in a session (0: never)."""
    sla_ms: int = 300_000
    still_waiting_after_ms: int = 900_000
    still_waiting_notice: str | None = (
        "We haven't forgotten you: someone from our team will be with you shortly."
    )
    claim_ttl_ms: int = 900_000


@dataclass(frozen=True, slots=True)
class PeoplePolicy:
    """A tenant's handoff and firewall settings (``handoff:`` and ``firewall:``)."""

    handoff: HandoffPolicy = field(default_factory=HandoffPolicy)
    firewall: AbuseRules = field(default_factory=AbuseRules)


PeoplePolicies = Callable[[TenantId], PeoplePolicy]
"""The policy of each tenant (a tenant the file does not name gets the defaults)."""


def default_policies(tenant: TenantId) -> PeoplePolicy:
    return PeoplePolicy()
