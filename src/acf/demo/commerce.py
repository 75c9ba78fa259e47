"""An in-process commerce backend for the demo agent, and its tools.

Seeded orders 1001-1005 and subscriptions 2001-2003; tickets and refunds are kept in
memory. It counts every call per tool and per idempotency key, so a test can say "one
refund". It behaves like a careful real backend: an unknown order or subscription is a
definite failure, a second refund of an order or a second cancellation is refused, and a
ticket asked for again under the same idempotency key is the same ticket.

- ``lookup_order`` (PURE): ``order_id`` (digits);
- ``create_ticket`` (IDEMPOTENT, session scope, key ``ticket-{topic}``): ``topic``,
  ``summary``;
- ``refund_order`` (IRREVERSIBLE, requires confirmation, key ``order-{order_id}``):
  ``order_id``;
- ``cancel_subscription`` (IRREVERSIBLE, requires confirmation, key
  ``subscription-{subscription_id}``): ``subscription_id``.

The irreversible tools have reconcile hooks: asked about an unknown outcome, the backend
says whether it acted under that idempotency key.
"""

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from acf.domain.tools import DedupeScope, SideEffectPolicy, ToolSpec
from acf.ports.tool_backend import Reconciled, Tool, ToolCall

_DIGITS = {"type": "string", "pattern": "^[0-9]{1,12}$"}


SUMMARY_CHARS = 2000
"""A ticket keeps the first characters of a long complaint (it still opens)."""


class CommerceRefusal(Exception):
    """The backend refused the request: nothing happened (a definite failure)."""


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    customer: str
    status: str
    """processing | shipped | delivered | cancelled | refunded"""
    amount_cents: int
    items: tuple[str, ...]
    carrier: str | None = None
    tracking: str | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    subscription_id: str
    customer: str
    plan: str
    status: str
    """active | cancelled"""


@dataclass(frozen=True, slots=True)
class Refund:
    refund_id: str
    order_id: str
    amount_cents: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class Ticket:
    ticket_id: str
    topic: str
    summary: str
    idempotency_key: str


DEMO_ORDERS = (
    Order("1001", "ana", "shipped", 4990, ("running shoes",), "DHL", "00340434161094"),
    Order("1002", "ana", "processing", 12000, ("rain jacket", "wool socks")),
    Order("1003", "ben", "delivered", 2500, ("water bottle",), "UPS", "1Z999AA10123456784"),
    Order("1004", "ben", "delivered", 8950, ("backpack",), "DHL", "00340434161095"),
    Order("1005", "carla", "cancelled", 1500, ("headlamp",)),
)
DEMO_SUBSCRIPTIONS = (
    Subscription("2001", "ana", "Premium monthly", "active"),
    Subscription("2002", "ben", "Basic yearly", "active"),
    Subscription("2003", "carla", "Premium monthly", "cancelled"),
)


def money(cents: int) -> str:
    return f"€{cents // 100}.{cents % 100:02d}"


def _status_message(order: Order) -> str:
    if order.status == "shipped":
        return f"it is on its way with {order.carrier} (tracking {order.tracking})"
    if order.status == "processing":
        return "it is being packed and should ship within 24 hours"
    if order.status == "delivered":
        return f"{order.carrier} delivered it (tracking {order.tracking})"
    if order.status == "cancelled":
        return "it was cancelled before it shipped; nothing was charged"
    return f"{money(order.amount_cents)} is on its way back to your payment method"


class CommerceBackend:
    """Orders, subscriptions, tickets and refunds in memory, with call counters."""

    def __init__(
        self,
        orders: Iterable[Order] = DEMO_ORDERS,
        subscriptions: Iterable[Subscription] = DEMO_SUBSCRIPTIONS,
    ) -> None:
        self.orders = {o.order_id: o for o in orders}
        self.subscriptions = {s.subscription_id: s for s in subscriptions}
        self.refunds: list[Refund] = []
        self.tickets: dict[str, Ticket] = {}
        """By idempotency key: the same key is the same ticket."""
        self.cancellations: dict[str, str] = {}
        """Cancelled subscription ids, by idempotency key."""
        self.calls: Counter[str] = Counter()
        """Every call received, per tool."""
        self.calls_by_key: Counter[tuple[str, str]] = Counter()
        """Every call received, per (tool, idempotency key)."""

    def _received(self, tool: str, call: ToolCall) -> None:
        self.calls[tool] += 1
        self.calls_by_key[(tool, call.idempotency_key)] += 1

    def _order(self, order_id: Any) -> Order:
        order = self.orders.get(str(order_id))
        if order is None:
            raise CommerceRefusal(f"there is no order {order_id}")
        return order

    def refunds_of(self, order_id: str) -> list[Refund]:
        return [r for r in self.refunds if r.order_id == order_id]

    async def lookup_order(self, call: ToolCall) -> dict[str, Any]:
        self._received("lookup_order", call)
        await asyncio.sleep(0)
        order = self._order(call.args["order_id"])
        return {
            "order_id": order.order_id,
            "status": order.status,
            "message": _status_message(order),
            "amount": money(order.amount_cents),
            "items": list(order.items),
            "customer": order.customer,
        }

    async def create_ticket(self, call: ToolCall) -> dict[str, Any]:
        self._received("create_ticket", call)
        await asyncio.sleep(0)
        ticket = self.tickets.get(call.idempotency_key)
        if ticket is None:  # deduplicated on the key, as the IDEMPOTENT policy promises
            ticket = Ticket(
                f"T-{len(self.tickets) + 1:04d}",
                str(call.args["topic"]),
                str(call.args["summary"])[:SUMMARY_CHARS],
                call.idempotency_key,
            )
            self.tickets[call.idempotency_key] = ticket
        return {
            "ticket_id": ticket.ticket_id,
            "topic": ticket.topic,
            "message": f"ticket {ticket.ticket_id} is open; a colleague will reply here",
        }

    async def refund_order(self, call: ToolCall) -> dict[str, Any]:
        self._received("refund_order", call)
        await asyncio.sleep(0)
        order = self._order(call.args["order_id"])
        if order.status == "refunded":
            raise CommerceRefusal(f"order {order.order_id} was already refunded")
        if order.status == "cancelled":
            raise CommerceRefusal(f"order {order.order_id} was cancelled; nothing was charged")
        if order.status not in ("shipped", "delivered"):
            raise CommerceRefusal(f"order {order.order_id} has not shipped yet; cancel it instead")
        refund = Refund(
            f"R-{len(self.refunds) + 1:04d}",
            order.order_id,
            order.amount_cents,
            call.idempotency_key,
        )
        self.refunds.append(refund)
        self.orders[order.order_id] = replace(order, status="refunded")
        return _refund_result(refund)

    async def reconcile_refund(self, call: ToolCall) -> Reconciled:
        """Whether a refund under this idempotency key happened (for an unknown outcome)."""
        done = [r for r in self.refunds if r.idempotency_key == call.idempotency_key]
        return Reconciled(True, _refund_result(done[0])) if done else Reconciled(False)

    async def cancel_subscription(self, call: ToolCall) -> dict[str, Any]:
        self._received("cancel_subscription", call)
        await asyncio.sleep(0)
        sid = str(call.args["subscription_id"])
        subscription = self.subscriptions.get(sid)
        if subscription is None:
            raise CommerceRefusal(f"there is no subscription {sid}")
        if subscription.status == "cancelled":
            raise CommerceRefusal(f"subscription {sid} is already cancelled")
        self.subscriptions[sid] = replace(subscription, status="cancelled")
        self.cancellations[call.idempotency_key] = sid
        return _cancel_result(self.subscriptions[sid])

    async def reconcile_cancel(self, call: ToolCall) -> Reconciled:
        """Whether a cancellation under this idempotency key happened."""
        sid = self.cancellations.get(call.idempotency_key)
        if sid is None:
            return Reconciled(False)
        return Reconciled(True, _cancel_result(self.subscriptions[sid]))


def _refund_result(refund: Refund) -> dict[str, Any]:
    return {
        "refund_id": refund.refund_id,
        "order_id": refund.order_id,
        "amount": money(refund.amount_cents),
        "message": f"{money(refund.amount_cents)} will be back on your card in 3-5 days",
    }


def _cancel_result(subscription: Subscription) -> dict[str, Any]:
    return {
        "subscription_id": subscription.subscription_id,
        "plan": subscription.plan,
        "status": subscription.status,
        "message": f"your {subscription.plan} plan ends at the close of this billing period",
    }


def _schema(**properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(properties),
        "properties": properties,
        "additionalProperties": False,
    }


LOOKUP_ORDER = ToolSpec(
    "lookup_order",
    SideEffectPolicy.PURE,
    args_schema=_schema(order_id=_DIGITS),
    business_key="{order_id}",
    timeout_ms=5_000,
    status_text="Checking your order...",
    description="Look up an order by its number: its status, items and total.",
)
CREATE_TICKET = ToolSpec(
    "create_ticket",
    SideEffectPolicy.IDEMPOTENT,
    args_schema=_schema(
        topic={"type": "string", "minLength": 1, "maxLength": 64},
        summary={"type": "string", "minLength": 1},
    ),
    business_key="ticket-{topic}",
    dedupe_scope=DedupeScope.SESSION,
    status_text="Opening a ticket...",
    description="Open a support ticket for a person to follow up (one per topic and session).",
)
REFUND_ORDER = ToolSpec(
    "refund_order",
    SideEffectPolicy.IRREVERSIBLE,
    args_schema=_schema(order_id=_DIGITS),
    business_key="order-{order_id}",
    requires_confirmation=True,
    status_text="Refunding your order...",
    description="Refund an order in full. Irreversible: the customer confirms it first.",
)
CANCEL_SUBSCRIPTION = ToolSpec(
    "cancel_subscription",
    SideEffectPolicy.IRREVERSIBLE,
    args_schema=_schema(subscription_id=_DIGITS),
    business_key="subscription-{subscription_id}",
    requires_confirmation=True,
    status_text="Cancelling your subscription...",
    description="Cancel a subscription. Irreversible: the customer confirms it first.",
)
COMMERCE_SPECS = (LOOKUP_ORDER, CREATE_TICKET, REFUND_ORDER, CANCEL_SUBSCRIPTION)


def commerce_tools(backend: CommerceBackend) -> list[Tool]:
    """The four demo tools over ``backend``, ready for a ``ToolRegistry``."""
    return [
        Tool(LOOKUP_ORDER, backend.lookup_order),
        Tool(CREATE_TICKET, backend.create_ticket),
        Tool(REFUND_ORDER, backend.refund_order, backend.reconcile_refund),
        Tool(CANCEL_SUBSCRIPTION, backend.cancel_subscription, backend.reconcile_cancel),
    ]


COMMERCE = "commerce"
"""The name configurations give these tools: ``{name: lookup_order, builtin: commerce}``."""


def commerce_factory() -> list[Tool]:
    """The four tools over a new backend: each tenant that names them gets its own."""
    return commerce_tools(CommerceBackend())
