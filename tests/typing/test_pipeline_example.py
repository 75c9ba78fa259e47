"""A pipeline and its tools written only against acf's public names, and its test.

docs/pipelines.md shows this file; mypy (strict) checks it, pytest runs it.
"""

from pathlib import Path
from typing import Any

from acf import (
    Outcome,
    PipelineResult,
    ReplySegment,
    SideEffectPolicy,
    Tool,
    ToolCall,
    ToolRegistry,
    ToolSpec,
    TurnContext,
)
from acf.testing import Harness, HarnessOptions

ORDER_ARGS = {
    "type": "object",
    "required": ["order_id"],
    "properties": {"order_id": {"type": "string", "pattern": "^[0-9]{1,12}$"}},
    "additionalProperties": False,
}


class Shop:
    """Your backend: here, orders in memory and the refunds it made, by idempotency key."""

    def __init__(self) -> None:
        self.orders = {"1003": "delivered"}
        self.refunds: dict[str, str] = {}

    async def refund(self, call: ToolCall) -> dict[str, Any]:
        order_id = str(call.args["order_id"])
        # A real backend deduplicates on the key acf sends (retries carry the same one).
        self.refunds.setdefault(call.idempotency_key, order_id)
        return {"order_id": order_id}


def shop_tools(shop: Shop) -> ToolRegistry:
    """The agent's allowlist: what is registered here is all its pipeline may call."""
    tools = ToolRegistry()

    @tools.tool(ToolSpec("order_status", SideEffectPolicy.PURE, args_schema=ORDER_ARGS))
    async def order_status(call: ToolCall) -> dict[str, Any]:
        order_id = str(call.args["order_id"])
        if order_id not in shop.orders:
            raise LookupError(f"no order {order_id}")  # a definite failure
        return {"status": shop.orders[order_id]}

    refund = ToolSpec(
        "refund",
        SideEffectPolicy.IRREVERSIBLE,
        args_schema=ORDER_ARGS,
        business_key="order-{order_id}",
        requires_confirmation=True,
    )
    tools.add(Tool(refund, shop.refund))
    return tools


class RefundDesk:
    """Answers "where is order N" and offers "refund order N" after the customer's yes."""

    name = "refund-desk"
    version = "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        settled = ctx.confirmation  # a yes to our question ran the refund before this run
        if settled is not None and settled["answer"] == "yes":
            if settled["outcome"] in (Outcome.OK, Outcome.ALREADY_DONE):
                return PipelineResult.reply("Done: your refund is on its way.")
            return PipelineResult.reply("The refund did not go through; a person will help.")
        text = " ".join(m.text or "" for m in ctx.messages)
        order_id = next((word for word in text.split() if word.isdigit()), None)
        if order_id is None:
            return PipelineResult.reply("Which order? Send me its number.")
        status = await ctx.tools.call("order_status", {"order_id": order_id})
        if not status.ok:
            return PipelineResult.reply(f"I cannot find order {order_id}.")
        answer = ReplySegment(f"Order {order_id} is {status.value['status']}.")
        if "refund" not in text.lower():
            return PipelineResult(segments=(answer,))
        question = await ctx.request_confirmation(
            "refund", {"order_id": order_id}, f"Refund order {order_id}?"
        )
        return PipelineResult(segments=(answer, question), expects_more_input=True)


async def test_the_refund_runs_once_and_only_after_yes(tmp_path: Path) -> None:
    shop = Shop()
    options = HarnessOptions(pipeline=RefundDesk(), tool_registry=shop_tools(shop))
    async with Harness(tmp_path, options) as h:
        await h.send("ana", "where is order 1003")
        await h.run_until_idle()
        await h.send("ana", "please refund order 1003")
        await h.run_until_idle()
        assert shop.refunds == {}  # asked, not done
        await h.send("ana", "yes")
        await h.run_until_idle()
        await h.send("ana", "yes")  # a second yes has nothing left to confirm
        await h.run_until_idle()
        assert list(shop.refunds.values()) == ["1003"]
        assert h.replies("ana")[:4] == [
            "Order 1003 is delivered.",
            "Order 1003 is delivered.",
            "Refund order 1003?",
            "Done: your refund is on its way.",
        ]
