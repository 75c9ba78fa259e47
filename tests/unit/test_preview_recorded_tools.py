"""The preview's recorded-results backend serves each replayed session its own recorded
results: two customers' calls with the same tool and arguments never get each other's."""

from typing import Any

from acf.domain.ids import GroupId, SessionId, TenantId, TurnId
from acf.domain.tools import LedgerStatus, SideEffectPolicy, ToolSpec
from acf.ports.ledger import LedgerEntry
from acf.ports.tool_backend import Tool, ToolCall
from acf.ports.tool_registry import ToolRegistry
from acf.preview.recorded_tools import RecordedResults

ARGS = {"order_id": "1001"}


def row(session: str, started_at_ms: int, status: str) -> LedgerEntry:
    return LedgerEntry(
        tenant=TenantId("shop"),
        execution_id=f"x-{session}",
        idempotency_key=f"k-{session}",
        tool="lookup_order",
        policy=SideEffectPolicy.PURE,
        status=LedgerStatus.SUCCEEDED,
        session_id=SessionId(session),
        group_id=GroupId(f"g-{session}"),
        turn_id=TurnId(f"t-{session}"),
        customer=session,
        args=ARGS,
        started_at_ms=started_at_ms,
        result={"status": status},
    )


async def never(call: ToolCall) -> Any:
    raise AssertionError("the real backend is never called")


async def call(registry: ToolRegistry, execution_id: str) -> Any:
    tool = registry.get("lookup_order")
    assert tool is not None
    return await tool.handler(ToolCall(ARGS, "key", execution_id, 1))


async def test_each_session_gets_its_own_recorded_result() -> None:
    results = RecordedResults([row("ann", 1, "shipped"), row("bob", 2, "lost")])
    calling = {"sandbox-1": "bob", "sandbox-2": "ann", "sandbox-3": "bob", "sandbox-4": None}

    async def session_of(execution_id: str) -> str | None:
        return calling[execution_id]

    results.session_of = session_of
    spec = ToolSpec("lookup_order", SideEffectPolicy.PURE)
    registry = results.registry(ToolRegistry([Tool(spec, never)]))
    assert await call(registry, "sandbox-1") == {"status": "lost"}  # bob first: still his
    assert await call(registry, "sandbox-2") == {"status": "shipped"}
    assert await call(registry, "sandbox-3") == {"status": "lost"}
    unknown = await call(registry, "sandbox-4")  # no recorded session: nobody's result
    assert unknown["sandbox"] is True
    assert results.sandboxed == {"sandbox-4"}
    assert results.calls == 4
