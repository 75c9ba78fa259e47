"""Identities: one customer across channels, and the addresses that answer into a session.

A customer (an id the tenant chooses, such as its CRM id) links addresses on channels:
its WhatsApp id, phone number, email address, Telegram chat id, web id. The fallback
ladder sends a refused reply to a linked address on another channel, and an operator can
continue a conversation there (DESIGN §9).

A session route says: a message from this address on this channel, to this agent, joins
this session. ``AppendMessage`` follows it (``acf.ports.message_log``), so the customer's
answer on the fallback channel lands in the conversation that wrote to them there.
"""

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acf.domain.channels import Channel
from acf.domain.errors import Conflict
from acf.domain.fallback import Route
from acf.domain.ids import AgentId, SessionId, TenantId
from acf.ports.unit_of_work import WriteOp


class AddressTaken(Conflict):
    """The address is linked to another customer of the tenant; nothing was linked."""

    def __init__(self, route: Route, owner: str) -> None:
        super().__init__(
            f"{route.channel.value} address {route.address!r} is linked to another "
            f"customer ({owner!r}); unlink it there first"
        )
        self.route = route
        self.owner = owner


@dataclass(frozen=True, slots=True)
class Identity:
    customer_id: str
    route: Route
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class LinkIdentities(WriteOp[int]):
    """Link every address of ``routes`` to ``customer_id``; returns how many were new.

    An address already linked to this customer stays as it is; one linked to another
    customer raises ``AddressTaken``, so nothing of the unit is committed.
    """

    customer_id: str
    routes: tuple[Route, ...]
    at_ms: int


@dataclass(frozen=True, slots=True)
class UnlinkIdentity(WriteOp[bool]):
    """Remove one address of ``customer_id``; returns whether it was linked to them."""

    customer_id: str
    route: Route


@dataclass(frozen=True, slots=True)
class RouteToSession(WriteOp[None]):
    """From now on, messages from ``route`` join ``session_id`` (``agent``'s), while it is
    open and for ``ROUTE_TTL_MS``; the newest route of an address wins. Unlinking the
    address removes its routes."""

    agent: AgentId
    route: Route
    session_id: SessionId
    at_ms: int


@runtime_checkable
class Identities(Protocol):
    """Reads of linked identities and session routes.

    Guarantees: an address (tenant, channel, address) belongs to at most one customer (a
    key of the store, not a read before the write); every read is scoped to ``tenant``.
    """

    async def of_customer(self, tenant: TenantId, customer_id: str) -> list[Identity]:
        """The customer's addresses, by channel then address."""
        ...

    async def owner(self, tenant: TenantId, route: Route) -> str | None:
        """The customer the address is linked to, if any."""
        ...

    async def linked(self, tenant: TenantId, route: Route) -> dict[Channel, str]:
        """The addresses, one per channel (the oldest link), of the customer that owns
        ``route``; empty when nobody does."""
        ...

    async def routed_session(self, tenant: TenantId, route: Route, at_ms: int) -> SessionId | None:
        """The open session messages from ``route`` are routed to at ``at_ms`` (the newest
        route younger than ``ROUTE_TTL_MS``, whatever its agent), if any."""
        ...
