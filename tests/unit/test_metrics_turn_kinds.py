"""FabricMetrics counts the agent's turns in the turn families (``acf_turns_total``, the run
and latency histograms): an operator's reply (a HUMAN turn) and a blocked customer's dropped
messages (a DROP turn) commit a ``turn.committed`` too, and are counted by the people
metrics instead."""

from dataclasses import replace
from typing import Any

from acf.domain.events import EventKind, FabricEvent
from acf.observability import FabricMetrics
from tests.unit.test_metrics import ev, samples, value


def committed(turn: str, **data: Any) -> FabricEvent:
    """A ``turn.committed`` whose data may name its ``kind`` (``ev`` takes the event's)."""
    event = ev(EventKind.TURN_COMMITTED, turn=turn)
    return replace(event, data=data)


def test_human_and_drop_turns_are_not_agent_turns() -> None:
    metrics = FabricMetrics()
    metrics.observe(
        [
            committed("a1", run_ms=1_000, latency_ms=2_000),
            committed("a2", kind="agent", run_ms=1_000),
            committed("h1", kind="human", replies=1, run_ms=0),
            committed("d1", kind="drop", from_seq=0, to_seq=3, run_ms=0),
        ]
    )
    found = samples(metrics)
    assert value(found, "acf_turns_total", tenant="t1", outcome="committed") == 2
    assert value(found, "acf_turn_run_seconds_count", tenant="t1", outcome="committed") == 2
    assert value(found, "acf_operator_replies_total", tenant="t1") == 1
