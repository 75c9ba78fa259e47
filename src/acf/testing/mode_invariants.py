"""Who may answer a session (issue #22), checked on what a run left in the store.

- ``agent_never_answers_human_ranges``: a committed (or failed) agent turn's range never
  overlaps a range a HUMAN turn consumed: the messages an operator answered are never
  answered again by the agent;
- ``no_agent_reply_outside_agent_mode``: from the audit trail in commit order, no agent
  turn's reply (``response.queued``) was queued while the session was in human, cooldown or
  blocked mode. The modes come from the session's events (``session.handed_off`` and
  ``session.resumed``, ``abuse.cooldown_started`` and ``abuse.cooldown_ended``) and the
  tenant's block list events (``customer.blocked``, ``customer.unblocked`` of the session's
  channel and customer). A mode change the committing turn's own unit writes (the
  pipeline's handoff, the tenant's fallback rule, a policy-blocks cool-down: same trace,
  same instant) is not held against its reply: the unit's ``ConsumeRange`` checked agent
  mode first;
- ``unconsumed_allowed``: a session in human or cooldown mode keeps its unanswered messages
  (for the operator, or until the cool-down ends); every other session consumes them all.

Replies under an ``operator-`` turn id (notices) and HUMAN turns' replies are a person's or
the fabric's, never the agent's.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from acf.domain.channels import Channel
from acf.domain.events import EventKind, FabricEvent
from acf.domain.modes import SessionMode, TurnKind
from acf.domain.turns import Turn, TurnPhase
from acf.ports.session_store import SessionRecord
from acf.ports.store import Store
from acf.service.continuity import is_notice

HOLDING = frozenset({SessionMode.HUMAN, SessionMode.COOLDOWN})
"""Modes whose sessions keep unanswered messages."""
ENTERS: Mapping[EventKind, SessionMode] = {
    EventKind.SESSION_HANDED_OFF: SessionMode.HUMAN,
    EventKind.ABUSE_COOLDOWN_STARTED: SessionMode.COOLDOWN,
    EventKind.CUSTOMER_BLOCKED: SessionMode.BLOCKED,
}
LEAVES: Mapping[EventKind, frozenset[SessionMode]] = {
    # A resume hands back a session in human mode or in a cool-down.
    EventKind.SESSION_RESUMED: frozenset({SessionMode.HUMAN, SessionMode.COOLDOWN}),
    EventKind.ABUSE_COOLDOWN_ENDED: frozenset({SessionMode.COOLDOWN}),
    EventKind.CUSTOMER_UNBLOCKED: frozenset({SessionMode.BLOCKED}),
}
SESSION_MODE_EVENTS = (
    EventKind.SESSION_HANDED_OFF,
    EventKind.SESSION_RESUMED,
    EventKind.ABUSE_COOLDOWN_STARTED,
    EventKind.ABUSE_COOLDOWN_ENDED,
)
BLOCK_EVENTS = (EventKind.CUSTOMER_BLOCKED, EventKind.CUSTOMER_UNBLOCKED)


def unconsumed_allowed(session: SessionRecord) -> bool:
    return session.mode in HOLDING


def agent_never_answers_human_ranges(session_id: str, turns: Sequence[Turn]) -> list[str]:
    """No committed or failed agent turn's range overlaps a HUMAN turn's."""
    ended = (TurnPhase.COMMITTED, TurnPhase.FAILED)
    human = [t for t in turns if t.kind is TurnKind.HUMAN and t.phase in ended]
    agent = [t for t in turns if t.kind is TurnKind.AGENT and t.phase in ended]
    return [
        f"session {session_id}: agent turn {a.turn_id} ({a.from_seq}, {a.to_seq}] answered "
        f"messages operator turn {h.turn_id} ({h.from_seq}, {h.to_seq}] answered"
        for h in human
        for a in agent
        if a.from_seq < h.to_seq and h.from_seq < a.to_seq
    ]


@dataclass(frozen=True, slots=True)
class Change:
    """A mode entered (``enters``) or left (``leaves``), as the audit trail has it."""

    event: FabricEvent
    enters: SessionMode | None
    leaves: frozenset[SessionMode]

    def own_to(self, reply: FabricEvent) -> bool:
        """A mode entered by the unit that queued ``reply`` (its turn's commit). A mode
        left is never the reply's own: its turn ran after (on the held messages' trace)."""
        if self.enters is None:
            return False
        c, r = self.event.correlation, reply.correlation
        if c.turn_id is not None and c.turn_id == r.turn_id:
            return True
        return c.trace_id == r.trace_id and self.event.at_ms == reply.at_ms


def mode_before(changes: Sequence[Change], reply: FabricEvent) -> SessionMode:
    """The session's mode when ``reply`` was queued: the strongest mode entered and not left
    by the changes before it, leaving out those of the reply's own unit."""
    held: set[SessionMode] = set()
    for change in changes:
        if change.own_to(reply):
            continue
        held -= change.leaves
        if change.enters is not None:
            held.add(change.enters)
    for mode in (SessionMode.BLOCKED, SessionMode.HUMAN, SessionMode.COOLDOWN):
        if mode in held:
            return mode
    return SessionMode.AGENT


def no_agent_reply_outside_agent_mode(
    session: SessionRecord,
    turns: Sequence[Turn],
    events: Sequence[FabricEvent],
    block_events: Sequence[FabricEvent],
    blocked_keys: Mapping[str, tuple[Channel, str]],
) -> list[str]:
    """``events``: the session's, in commit order; ``block_events``: the tenant's block list
    events; ``blocked_keys``: each block id's (channel, customer)."""
    kinds = {t.turn_id: t.kind for t in turns}
    own_key = (session.key.channel, session.key.customer)
    mine = [e for e in block_events if blocked_keys.get(str(e.data.get("block_id"))) == own_key]
    trail = sorted([*events, *mine], key=lambda e: e.event_id or 0)
    changes: list[Change] = []
    problems: list[str] = []
    for event in trail:
        if event.kind in ENTERS or event.kind in LEAVES:
            changes.append(
                Change(event, ENTERS.get(event.kind), LEAVES.get(event.kind, frozenset()))
            )
            continue
        turn_id = event.correlation.turn_id
        if event.kind is not EventKind.RESPONSE_QUEUED or turn_id is None or is_notice(turn_id):
            continue
        if kinds.get(turn_id, TurnKind.AGENT) is not TurnKind.AGENT:
            continue
        mode = mode_before(changes, event)
        if mode is not SessionMode.AGENT:
            problems.append(
                f"session {session.session_id}: agent turn {turn_id} queued a reply in "
                f"{mode.value} mode (event {event.event_id})"
            )
    return problems


async def block_keys(
    store: Store, tenant: str, events: Sequence[FabricEvent]
) -> dict[str, tuple[Channel, str]]:
    """Each block id named by ``events``: its (channel, customer), from the event's data or
    else from the block list."""
    found: dict[str, tuple[Channel, str]] = {}
    for event in events:
        block_id = event.data.get("block_id")
        if not isinstance(block_id, str) or block_id in found:
            continue
        channel, customer = event.data.get("channel"), event.data.get("customer")
        if isinstance(channel, str) and isinstance(customer, str):
            found[block_id] = (Channel(channel), customer)
            continue
        block = await store.blocks.get(tenant, block_id)
        if block is not None:
            found[block_id] = (block.channel, block.customer)
    return found
