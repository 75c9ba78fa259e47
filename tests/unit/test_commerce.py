"""The demo's in-process commerce backend and its tool specs."""

import jsonschema
import pytest

from acf.demo.commerce import (
    CommerceBackend,
    CommerceRefusal,
    commerce_tools,
)
from acf.domain.tools import DedupeScope, SideEffectPolicy, idempotency_key
from acf.ports.tool_backend import ToolCall
from acf.ports.tool_registry import ToolRegistry


def _call(key: str = "k1", **args: str) -> ToolCall:
    return ToolCall(args, key, "exec-1", 1)


def test_the_tools_and_their_policies() -> None:
    tools = {t.spec.name: t.spec for t in commerce_tools(CommerceBackend())}
    assert {n: s.policy for n, s in tools.items()} == {
        "lookup_order": SideEffectPolicy.PURE,
        "create_ticket": SideEffectPolicy.IDEMPOTENT,
        "refund_order": SideEffectPolicy.IRREVERSIBLE,
        "cancel_subscription": SideEffectPolicy.IRREVERSIBLE,
    }
    assert tools["refund_order"].requires_confirmation
    assert tools["refund_order"].scope is DedupeScope.BUSINESS
    assert tools["refund_order"].status_text
    assert tools["create_ticket"].scope is DedupeScope.SESSION
    assert ToolRegistry(commerce_tools(CommerceBackend())).names() == sorted(tools)


def test_the_refund_key_is_the_order_across_sessions_and_groups() -> None:
    (refund,) = [t.spec for t in commerce_tools(CommerceBackend()) if t.spec.name == "refund_order"]
    one = idempotency_key(refund, "demo", "s1", "g1", {"order_id": "1003"})
    other = idempotency_key(refund, "demo", "s2", "g2", {"order_id": "1003"})
    assert one == other == "demo:refund_order:order-1003"


@pytest.mark.parametrize(
    ("args", "valid"),
    [
        ({"order_id": "1001"}, True),
        ({"order_id": 1001}, False),
        ({"order_id": "10a1"}, False),
        ({}, False),
        ({"order_id": "1001", "extra": "x"}, False),
    ],
)
def test_order_arguments_are_strings_of_digits(args: dict[str, object], valid: bool) -> None:
    (lookup,) = [t.spec for t in commerce_tools(CommerceBackend()) if t.spec.name == "lookup_order"]
    errors = list(jsonschema.Draft202012Validator(dict(lookup.args_schema)).iter_errors(args))
    assert (not errors) is valid


async def test_lookup_reports_status_and_counts_calls() -> None:
    backend = CommerceBackend()
    result = await backend.lookup_order(_call(order_id="1001"))
    assert result["status"] == "shipped"
    assert "DHL" in result["message"]
    assert result["amount"] == "€49.90"
    await backend.lookup_order(_call(order_id="1002"))
    assert backend.calls["lookup_order"] == 2
    assert backend.calls_by_key[("lookup_order", "k1")] == 2


async def test_an_unknown_order_is_a_definite_failure() -> None:
    backend = CommerceBackend()
    with pytest.raises(CommerceRefusal, match="there is no order 9999"):
        await backend.lookup_order(_call(order_id="9999"))
    with pytest.raises(CommerceRefusal, match="there is no order 9999"):
        await backend.refund_order(_call(order_id="9999"))
    assert backend.refunds == []


async def test_a_refund_happens_once_per_order_at_the_backend() -> None:
    backend = CommerceBackend()
    result = await backend.refund_order(_call("key-a", order_id="1003"))
    assert result == {
        "refund_id": "R-0001",
        "order_id": "1003",
        "amount": "€25.00",
        "message": "€25.00 will be back on your card in 3-5 days",
    }
    with pytest.raises(CommerceRefusal, match="already refunded"):
        await backend.refund_order(_call("key-b", order_id="1003"))
    assert len(backend.refunds_of("1003")) == 1
    assert backend.calls["refund_order"] == 2
    assert (await backend.lookup_order(_call(order_id="1003")))["status"] == "refunded"


@pytest.mark.parametrize(
    ("order_id", "reason"), [("1005", "was cancelled"), ("1002", "has not shipped yet")]
)
async def test_refunds_are_refused_for_orders_that_cannot_be_refunded(
    order_id: str, reason: str
) -> None:
    backend = CommerceBackend()
    with pytest.raises(CommerceRefusal, match=reason):
        await backend.refund_order(_call(order_id=order_id))
    assert backend.refunds == []


async def test_reconcile_says_whether_a_refund_ran_under_the_key() -> None:
    backend = CommerceBackend()
    assert (await backend.reconcile_refund(_call("key-a", order_id="1004"))).happened is False
    await backend.refund_order(_call("key-a", order_id="1004"))
    answer = await backend.reconcile_refund(_call("key-a", order_id="1004"))
    assert answer.happened is True
    assert answer.result["refund_id"] == "R-0001"


async def test_a_ticket_is_deduplicated_on_its_idempotency_key() -> None:
    backend = CommerceBackend()
    first = await backend.create_ticket(_call("t-key", topic="person", summary="help"))
    again = await backend.create_ticket(_call("t-key", topic="person", summary="help!"))
    other = await backend.create_ticket(_call("t-other", topic="person", summary="help"))
    assert first["ticket_id"] == again["ticket_id"] == "T-0001"
    assert other["ticket_id"] == "T-0002"
    assert len(backend.tickets) == 2
    assert backend.calls_by_key[("create_ticket", "t-key")] == 2


async def test_a_subscription_is_cancelled_once() -> None:
    backend = CommerceBackend()
    result = await backend.cancel_subscription(_call("c1", subscription_id="2001"))
    assert result["status"] == "cancelled"
    assert backend.subscriptions["2001"].status == "cancelled"
    with pytest.raises(CommerceRefusal, match="already cancelled"):
        await backend.cancel_subscription(_call("c2", subscription_id="2001"))
    with pytest.raises(CommerceRefusal, match="no subscription 9"):
        await backend.cancel_subscription(_call("c3", subscription_id="9"))
    assert (await backend.reconcile_cancel(_call("c1", subscription_id="2001"))).happened
    assert not (await backend.reconcile_cancel(_call("c2", subscription_id="2001"))).happened
