"""Continuing a conversation on another channel (DESIGN §9), at an operator's request.

The customer's address on the chosen channel comes from their linked identities (the
customer who owns the address they last wrote from, or the session's own); none linked
is ``NotLinked`` and nothing changes. Otherwise, in one unit: that address is routed to
the session (their answer there joins it), an optional notice is queued for it (an
outbox row with that ``route``, delivered by the relay in the session's order), and a
``session.continued`` event records it all. Until the customer writes on the new
channel, the turns' replies still go where they last wrote.
"""

from dataclasses import dataclass
from typing import Any

from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.fallback import Route
from acf.domain.ids import TurnId, new_id, new_trace_id
from acf.ports.clock import Clock
from acf.ports.event_store import AppendEvent
from acf.ports.identities import RouteToSession
from acf.ports.outbox import EnqueueReply
from acf.ports.session_store import SessionRecord
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp
from acf.service.fallbacks import default_route


class NotLinked(Conflict):
    """The session's customer has no address linked on the channel."""


@dataclass(frozen=True, slots=True)
class Continued:
    route: Route
    outbox_id: int | None
    """The notice's row, when a text was given."""


NOTICE_PREFIX = "operator-"


def notice_turn_id() -> TurnId:
    """The turn id an operator's notice is queued under: no turn wrote it."""
    return f"{NOTICE_PREFIX}{new_id()}"


def is_notice(turn_id: TurnId) -> bool:
    """Whether an outbox row with this turn id is an operator's notice."""
    return turn_id.startswith(NOTICE_PREFIX)


async def continue_on(
    store: Store, clock: Clock, session: SessionRecord, channel: Channel, text: str | None
) -> Continued:
    tenant = session.key.tenant
    newest = await store.messages.recent(tenant, session.session_id, session.last_seq, 1)
    linked: dict[Channel, str] = {}
    # Whoever owns the address they last wrote from, else the session's own.
    for known in dict.fromkeys(
        (default_route(session, newest[-1] if newest else None), default_route(session, None))
    ):
        linked = linked or await store.identities.linked(tenant, known)
    address = linked.get(channel)
    if address is None:
        raise NotLinked(
            f"the session's customer has no {channel.value} address linked: link one with "
            "PUT /v1/customers/{customer_id}/identities"
        )
    route = Route(channel, address)
    now = clock.now_ms()
    ops: list[WriteOp[Any]] = [RouteToSession(session.key.agent, route, session.session_id, now)]
    notice = None
    if text is not None:
        notice = EnqueueReply(session.session_id, notice_turn_id(), 0, {"text": text}, now, route)
        ops.append(notice)
    data = {**route.as_payload(), "notified": text is not None}
    correlation = Correlation(tenant, new_trace_id(), session.session_id)
    ops.append(AppendEvent(FabricEvent(EventKind.SESSION_CONTINUED, now, correlation, data)))
    results = await store.uow.commit(tenant, ops)
    return Continued(route, None if notice is None else results.get(notice))
