"""Planning a reply's fallback when its row fails definitely (DESIGN §9).

The relay (a definite refusal) and the delivery statuses (a provider's ``failed``) both
call ``plan``: it gathers what ``acf.domain.fallback.next_route`` decides on (the ladder
of the channel the reply started on, the channels already tried, the customer's linked
addresses, the channels the tenant can send on) and returns the write to commit in the
same unit as the failure, plus what the failure's event says about it.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from acf.domain.channels import Channel
from acf.domain.events import Correlation
from acf.domain.fallback import FallbackDecision, Route, next_route
from acf.domain.messages import InboundMessage
from acf.ports.outbox import EnqueueFallback, OutboxRow
from acf.ports.session_store import SessionRecord
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp
from acf.service.agents import Agents, pinned_or_none


@dataclass(frozen=True, slots=True)
class FallbackPlan:
    decision: FallbackDecision
    ops: list[WriteOp[Any]] = field(default_factory=list)
    """``EnqueueFallback`` when there is somewhere to go; empty otherwise."""
    audit: dict[str, Any] = field(default_factory=dict)
    """For the failure's event: ``{"fallback": {"to": …, "reason": …}}`` once a ladder
    is configured; empty without one (nothing to explain)."""

    @property
    def enqueued(self) -> bool:
        return bool(self.ops)


def default_route(session: SessionRecord, newest: InboundMessage | None) -> Route:
    """Where a reply without a route goes: where the customer last wrote (their newest
    message's channel and address), else the session's own key."""
    key = newest.key if newest is not None else session.key
    return Route(key.channel, key.customer)


def tried_before(row: OutboxRow) -> tuple[str, ...]:
    """The channels this reply went to before ``row`` (recorded on fallback copies)."""
    fallback = row.payload.get("fallback")
    if isinstance(fallback, dict):
        return tuple(str(c) for c in fallback.get("tried", ()))
    return ()


async def plan(
    store: Store,
    agents: Agents,
    session: SessionRecord,
    row: OutboxRow,
    route: Route,
    correlation: Correlation,
    at_ms: int,
    reachable: Collection[Channel] | None = None,
) -> FallbackPlan:
    """What to do about ``row`` failing definitely on ``route``."""
    tenant = session.key.tenant
    tried = tried_before(row)
    started_on = Channel(tried[0]) if tried else route.channel
    pinned = await pinned_or_none(agents, session)  # the session's version's policies
    if pinned is None:
        return FallbackPlan(FallbackDecision(None, "the session's agent is not configured"))
    policy = pinned.binding.settings.policy_for(started_on)
    if not policy.fallback:
        return FallbackPlan(next_route(route.channel, (), (), {}))
    linked = await store.identities.linked(tenant, route)
    decision = next_route(
        route.channel, policy.fallback, {Channel(c) for c in tried}, linked, reachable
    )
    to = None if decision.route is None else decision.route.as_payload()
    audit: dict[str, Any] = {"fallback": {"to": to, "reason": decision.reason}}
    if decision.route is None:
        return FallbackPlan(decision, audit=audit)
    op = EnqueueFallback(
        row.outbox_id,
        decision.route,
        (*tried, route.channel.value),
        decision.reason,
        correlation,
        at_ms,
    )
    return FallbackPlan(decision, [op], audit)
