"""The checker that ties tool execution events to ledger rows."""

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.testing.invariants import tool_events_name_ledger_rows


def event(kind: EventKind, execution_id: str) -> FabricEvent:
    return FabricEvent(kind, 1, Correlation("t", "tr", "s"), {"execution_id": execution_id})


def test_an_event_naming_no_ledger_row_is_reported() -> None:
    events = [
        event(EventKind.TOOL_EXECUTION_STARTED, "e2"),
        event(EventKind.TOOL_EXECUTION_COMPLETED, "e1"),
        event(EventKind.TOOL_REFUSED, "nothing"),  # a refusal has no row
    ]
    assert tool_events_name_ledger_rows(events, {"e1", "e2"}) == []
    problems = tool_events_name_ledger_rows(events, {"e1"})
    assert problems == ["event tool.execution_started names execution 'e2', not in the ledger"]
