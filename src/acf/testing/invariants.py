"""DESIGN §3 invariants, checked on what a run left in the store and on the channel.

Each check returns the problems it found (empty when the invariant holds). The scenario
runner applies all of them after every scenario; tests call them directly. Who may answer
a session (human, cooldown and blocked modes) is checked by ``mode_invariants``.
"""

import itertools
from collections import defaultdict
from collections.abc import Sequence

from acf.domain.channels import Channel
from acf.domain.events import EventKind, FabricEvent
from acf.domain.modes import TurnKind
from acf.domain.signals import DeliveryStatus
from acf.domain.turns import Turn, TurnPhase
from acf.ports.event_store import EventQuery
from acf.ports.ledger import LedgerQuery
from acf.ports.outbox import OutboxRow
from acf.ports.session_store import SessionFilter, SessionRecord
from acf.ports.store import Store
from acf.service.continuity import is_notice
from acf.testing import mode_invariants
from acf.testing.channel import RecordingChannel
from acf.testing.pipeline import Tally

ALL = 1_000_000
_ENDS = {EventKind.TURN_COMMITTED, EventKind.TURN_SUPERSEDED, EventKind.TURN_FAILED}
_TURN_EVENTS = {
    EventKind.WINDOW_CLOSED,
    EventKind.TURN_STARTED,
    EventKind.TURN_SUPERSEDED,
    EventKind.TURN_COMMITTED,
    EventKind.TURN_FAILED,
    EventKind.TURN_ABSORBED,
    EventKind.RESPONSE_QUEUED,
    EventKind.RESPONSE_DELIVERED,
}


async def sessions_of(store: Store, tenants: Sequence[str]) -> list[SessionRecord]:
    found: list[SessionRecord] = []
    for tenant in tenants:
        found += await store.sessions.list_sessions(tenant, SessionFilter(limit=ALL))
    return found


def messages_in_one_committed_range(session: SessionRecord, turns: Sequence[Turn]) -> list[str]:
    """Invariant 1: every accepted message lies in exactly one committed (or failed) range,
    an agent's, an operator's (HUMAN) or a blocked customer's (DROP); a session in human or
    cooldown mode may keep its newest messages unanswered (in no range yet)."""
    owners: dict[int, int] = defaultdict(int)
    for turn in turns:
        if turn.phase in (TurnPhase.COMMITTED, TurnPhase.FAILED):
            for seq in range(turn.from_seq + 1, turn.to_seq + 1):
                owners[seq] += 1
    held = mode_invariants.unconsumed_allowed(session)
    problems = [
        f"session {session.session_id}: message {seq} is in {owners.get(seq, 0)} committed ranges"
        for seq in range(1, session.last_seq + 1)
        if owners.get(seq, 0) != (0 if held and seq > session.consumed_seq else 1)
    ]
    if session.consumed_seq != session.last_seq and not held:
        problems.append(
            f"session {session.session_id}: consumed {session.consumed_seq} of {session.last_seq}"
        )
    return problems


def one_running_at_a_time(session_id: str, events: Sequence[FabricEvent]) -> list[str]:
    """Invariant 3, from the audit trail: RUNNING intervals of a session never overlap."""
    spans: dict[str, list[int]] = {}
    for event in events:
        turn_id = event.correlation.turn_id
        if turn_id is None:
            continue
        if event.kind is EventKind.TURN_STARTED:
            spans.setdefault(turn_id, [event.at_ms, -1])
        elif event.kind in _ENDS and turn_id in spans:
            spans[turn_id][1] = event.at_ms
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    problems = []
    for (a, (_, a_end)), (b, (b_start, _)) in itertools.pairwise(ordered):
        if a_end < 0 or a_end > b_start:
            problems.append(f"session {session_id}: turn {b} started while turn {a} was running")
    return problems


def no_irreversible_over_unseen(session_id: str, events: Sequence[FabricEvent]) -> list[str]:
    """Invariant 7, from the audit trail (events in commit order): an irreversible action
    starts only when every message received so far lies in the turn's range, unless it was
    forced (FORCE_COMPLETE, audited) or the channel answers each message alone (OFF)."""
    problems = []
    received = 0
    for event in events:
        if event.kind is EventKind.MESSAGE_RECEIVED:
            received = max(received, int(event.data.get("seq", 0)))
        elif event.kind is EventKind.TURN_IRREVERSIBLE_STARTED:
            data = event.data
            if data.get("forced") or data.get("off"):
                continue
            if received > int(data.get("to_seq", 0)):
                problems.append(
                    f"session {session_id}: irreversible action of turn "
                    f"{event.correlation.turn_id} started with message {received} unseen"
                )
    return problems


def correlated(
    events: Sequence[FabricEvent], unversioned: frozenset[str] = frozenset()
) -> list[str]:
    """Invariant 9 for events: turn events carry every correlation id (the delivery of an
    operator's notice has no turn group: no turn wrote it; the turns in ``unversioned``, an
    operator's or a blocked customer's, ran no agent: they have no versions)."""
    problems = []
    for event in events:
        c = event.correlation
        if not c.tenant or not c.trace_id:
            problems.append(f"event {event.event_id} ({event.kind}) lacks tenant or trace_id")
        notice = c.turn_id is not None and is_notice(c.turn_id)
        needed = [c.session_id, c.turn_id, c.group_id]
        if c.turn_id not in unversioned:
            needed += [c.agent_version, c.config_version]
        if event.kind in _TURN_EVENTS and not notice and None in needed:
            problems.append(f"event {event.event_id} ({event.kind}) lacks a correlation id: {c}")
    return problems


_TOOL_RUN_EVENTS = frozenset(
    {
        EventKind.TOOL_EXECUTION_STARTED,
        EventKind.TOOL_EXECUTION_COMPLETED,
        EventKind.TOOL_EXECUTION_FAILED,
        EventKind.TOOL_IN_DOUBT,
    }
)


def tool_events_name_ledger_rows(
    events: Sequence[FabricEvent], execution_ids: set[str]
) -> list[str]:
    """Every tool execution event names a row of the ledger (the audit trail and the
    ledger tell the same story, re-runs included)."""
    return [
        f"event {e.kind} names execution {e.data.get('execution_id')!r}, not in the ledger"
        for e in events
        if e.kind in _TOOL_RUN_EVENTS and e.data.get("execution_id") not in execution_ids
    ]


def cut_rows_explained(
    rows: Sequence[OutboxRow], events: Sequence[FabricEvent], channel: RecordingChannel | None
) -> list[str]:
    """The one exception to invariant 6: a cut part was never sent, and a ``reply.cut``
    event names it (the customer wrote again before it went out)."""
    named = {
        outbox_id
        for e in events
        if e.kind is EventKind.REPLY_CUT
        for outbox_id in e.data.get("outbox_ids", ())
    }
    sent = set() if channel is None else {s.outbox_id for s in channel.sends}
    problems = []
    for row in rows:
        if row.status is not DeliveryStatus.CUT:
            continue
        if row.outbox_id not in named:
            problems.append(f"outbox row {row.outbox_id} was cut without a reply.cut event")
        if row.outbox_id in sent or row.attempts or row.parts_sent:
            problems.append(f"outbox row {row.outbox_id} was cut after it was sent")
    return problems


async def check_all(
    store: Store,
    tenants: Sequence[str],
    channel: RecordingChannel | None = None,
    tally: Tally | None = None,
    allowed_repeats: int = 0,
) -> list[str]:
    """Every invariant the runtime owns, over every session of ``tenants``."""
    problems: list[str] = []
    blocks: dict[str, tuple[list[FabricEvent], dict[str, tuple[Channel, str]]]] = {}
    for tenant in tenants:
        query = EventQuery(kinds=mode_invariants.BLOCK_EVENTS, limit=ALL)
        found = await store.events.query(tenant, query)
        blocks[tenant] = (found, await mode_invariants.block_keys(store, tenant, found))
    for session in await sessions_of(store, tenants):
        tenant, sid = session.tenant, session.session_id
        turns = await store.turns.list_turns(tenant, sid)
        unversioned = frozenset(t.turn_id for t in turns if t.kind is not TurnKind.AGENT)
        problems += messages_in_one_committed_range(session, turns)
        problems += mode_invariants.agent_never_answers_human_ranges(sid, turns)
        if any(not t.phase.is_terminal for t in turns):
            problems.append(f"session {sid}: a turn is still live")
        events = await store.events.query(tenant, EventQuery(session_id=sid, limit=ALL))
        problems += one_running_at_a_time(sid, events)
        problems += no_irreversible_over_unseen(sid, events)
        problems += correlated(events, unversioned)
        problems += mode_invariants.no_agent_reply_outside_agent_mode(
            session, turns, events, *blocks[tenant]
        )
        ledger = await store.ledger.query(tenant, LedgerQuery(session_id=sid, limit=ALL))
        problems += tool_events_name_ledger_rows(events, {e.execution_id for e in ledger})
        rows = await store.outbox.for_session(tenant, sid)
        by_turn = {t.turn_id: t for t in turns}
        for turn in turns:
            record = await store.turns.get_record(tenant, turn.turn_id)
            c = None if record is None else record.correlation
            versions: tuple[object, ...] = ()
            if c is not None and turn.turn_id not in unversioned:
                versions = (c.agent_version, c.config_version)
            if c is None or None in (c.trace_id, c.session_id, c.turn_id, c.group_id, *versions):
                problems.append(f"turn {turn.turn_id}: no TurnRecord with full correlation")
            elif record is not None and record.outcome is not turn.phase:
                problems.append(f"turn {turn.turn_id}: record says {record.outcome}")
        for row in rows:
            owner = by_turn.get(row.turn_id)
            if is_notice(row.turn_id):
                pass  # an operator's notice (continue on another channel): no turn wrote it
            elif owner is None or owner.phase not in (TurnPhase.COMMITTED, TurnPhase.FAILED):
                problems.append(f"outbox row {row.outbox_id} comes from a turn not committed")
            if row.status is DeliveryStatus.PENDING:
                problems.append(f"outbox row {row.outbox_id} was never delivered")
        problems += cut_rows_explained(rows, events, channel)
    if channel is not None and channel.repeats() > allowed_repeats:
        problems.append(
            f"{channel.repeats()} repeated sends; at most {allowed_repeats} allowed (crashes "
            "between the provider's acceptance and its record)"
        )
    if tally is not None:
        if tally.most_running > 1:
            problems.append(f"{tally.most_running} pipelines ran at once for one session")
        problems += [
            f"irreversible tool {key} ran {count} times"
            for key, count in tally.tool_runs.items()
            if count > 1
        ]
    return problems
