"""Time a ready reply was held while the customer typed is not run time (issue 23): the
record's duration a canary compares (``record_facts``) and each ending event's ``run_ms``
leave it out; ``latency_ms`` (what the customer saw) keeps it."""

from typing import Any

import pytest

from acf.domain.config_versions import record_facts
from acf.domain.events import Correlation, EventKind
from acf.domain.records import TurnRecord
from acf.domain.replies import PipelineResult
from acf.domain.turns import GroupStatus, Turn, TurnGroup, TurnPhase
from acf.ports.event_store import AppendEvent
from acf.ports.turn_store import SaveTurnRecord
from acf.service import turn_ending_units
from acf.service.turn_progress_units import Ops, Versions

STARTED, ENDED = 1_000, 6_000

FACTS = [
    ("no hold", {}, 5_000),
    ("a hold of 3 s", {"held_ms": 3_000}, 2_000),
    ("a hold as a float", {"held_ms": 3_000.0}, 2_000),
    ("a hold longer than the span (clock skew): 0", {"held_ms": 9_000}, 0),
    ("not a duration: ignored", {"held_ms": "3000"}, 5_000),
    ("a flag is no duration", {"held_ms": True}, 5_000),
    ("negative: ignored", {"held_ms": -10}, 5_000),
]


@pytest.mark.parametrize(("details", "duration"), [c[1:] for c in FACTS], ids=[c[0] for c in FACTS])
def test_the_records_duration_leaves_the_hold_out(details: dict[str, Any], duration: int) -> None:
    record = TurnRecord(
        Correlation("t1", "trace"), TurnPhase.COMMITTED, 0, 1, 1, STARTED, ENDED, details=details
    )
    assert record_facts(record).duration_ms == duration


TURN = Turn(
    tenant="t1",
    turn_id="turn",
    group_id="group",
    session_id="s1",
    trace_id="trace",
    phase=TurnPhase.RUNNING,
    from_seq=0,
    to_seq=1,
    attempt=1,
    fence=1,
    irreversible_started=False,
    created_at_ms=0,
    updated_at_ms=0,
)
GROUP = TurnGroup("t1", "group", "s1", GroupStatus.OPEN, 0, 1, 500)
VERSIONS = Versions("agent/1", "v1")


def ending(ops: Ops, kind: EventKind) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ending event's data, and its record's details."""
    (event,) = [op.event for op in ops if isinstance(op, AppendEvent) and op.event.kind is kind]
    (record,) = [op.record for op in ops if isinstance(op, SaveTurnRecord)]
    return dict(event.data), dict(record.details)


@pytest.mark.parametrize("held", [0, 3_000])
def test_each_ending_leaves_the_hold_out_of_run_ms(held: int) -> None:
    times: dict[str, Any] = {"started_at_ms": STARTED, "at_ms": ENDED, "versions": VERSIONS}
    ends = {
        EventKind.TURN_COMMITTED: turn_ending_units.commit(
            turn=TURN,
            group=GROUP,
            fence=1,
            result=PipelineResult.reply("hi"),
            state_version=1,
            require_last_seq=True,
            held_ms=held,
            **times,
        ),
        EventKind.TURN_FAILED: turn_ending_units.fail(
            turn=TURN, group=GROUP, fence=1, error="x", fallback_text="sorry", held_ms=held, **times
        ),
        EventKind.TURN_SUPERSEDED: turn_ending_units.supersede(
            turn=TURN,
            group=GROUP,
            fence=1,
            restart=TURN,
            close_at_ms=ENDED,
            reason="new_messages",
            held_ms=held,
            **times,
        ),
    }
    for kind, ops in ends.items():
        data, details = ending(ops, kind)
        assert data["run_ms"] == ENDED - STARTED - held, kind
        assert data.get("held_ms") == (held or None), kind
        assert details.get("held_ms") == (held or None), kind
        if "latency_ms" in data:  # what the customer saw: from the group's first window
            assert data["latency_ms"] == ENDED - GROUP.created_at_ms, kind
