"""The human handoff's policy and the pure decisions the mode watch takes on it."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

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


class SlaFacts(Protocol):
    """What ``sla_actions`` reads of an open handoff (``acf.ports.handoffs.Handoff`` has it)."""

    @property
    def handoff_id(self) -> str: ...
    @property
    def opened_at_ms(self) -> int: ...
    @property
    def claimed_by(self) -> str | None: ...
    @property
    def claim_expires_at_ms(self) -> int | None: ...
    @property
    def last_operator_reply_at_ms(self) -> int | None: ...
    @property
    def sla_breached_at_ms(self) -> int | None: ...
    @property
    def still_waiting_at_ms(self) -> int | None: ...
    @property
    def resolved_at_ms(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class SlaBreach:
    """The handoff waited unclaimed past the tenant's SLA: mark it (event and metric)."""

    handoff_id: str
    waited_ms: int


@dataclass(frozen=True, slots=True)
class StillWaiting:
    """Nobody claimed or answered the handoff in time: tell the customer, once."""

    handoff_id: str
    notice: str


SlaAction = SlaBreach | StillWaiting


def waiting_since_ms(handoff: SlaFacts) -> int:
    """Since when the customer waits for a person: the handoff's opening, or the last
    operator reply when later (the inbox's waiting time)."""
    return max(handoff.opened_at_ms, handoff.last_operator_reply_at_ms or 0)


def sla_actions(handoff: SlaFacts, policy: HandoffPolicy, now_ms: int) -> list[SlaAction]:
    """What the mode watch does about one handoff at ``now_ms`` (pure).

    Only a handoff that is unresolved and that nobody holds a live claim on is waiting:

    - ``SlaBreach`` once it has waited ``sla_ms`` (since it opened or since the last
      operator reply), unless it was marked already;
    - ``StillWaiting`` once ``still_waiting_after_ms`` passed since it opened with no
      operator reply at all, when the policy has a notice and it was not sent already.

    Each is recorded by a conditional op (``MarkSlaBreached``, ``MarkStillWaiting``), so
    several watches deciding the same action at once commit it once.
    """
    if handoff.resolved_at_ms is not None:
        return []
    claimed = handoff.claimed_by is not None and (handoff.claim_expires_at_ms or 0) > now_ms
    if claimed:
        return []
    actions: list[SlaAction] = []
    waited = now_ms - waiting_since_ms(handoff)
    if handoff.sla_breached_at_ms is None and policy.sla_ms > 0 and waited >= policy.sla_ms:
        actions.append(SlaBreach(handoff.handoff_id, waited))
    notice = policy.still_waiting_notice
    if (
        notice
        and handoff.still_waiting_at_ms is None
        and handoff.last_operator_reply_at_ms is None
        and policy.still_waiting_after_ms > 0
        and now_ms - handoff.opened_at_ms >= policy.still_waiting_after_ms
    ):
        actions.append(StillWaiting(handoff.handoff_id, notice))
    return actions
