"""What a turn's end starts beyond its reply (pure, table-testable): the handoff the
pipeline asked for, the tenant's fallback rule, and the refusal the firewall counts.

They ride in the turn's own unit, after its ``ConsumeRange`` (so a turn whose session
already left agent mode never gets this far), and only in a turn that answered as the
agent: a silent commit (the session left agent mode after the irreversible gate) starts
none of them.

- ``PipelineResult.handoff`` → ``EnterHuman(source=PIPELINE)`` with the tenant's notice
  (the session stays flagged too, as before).
- A fallback answer (``trigger_facts(record).fallback``: not a router's fallback to another
  route) → ``CountFallback``, and the
  tenant's rule ``EnterHuman(source=RULE, reason="fallbacks")`` once the session's
  fallbacks reach ``handoff.after_fallbacks`` (0: never).
- A refusal (``abuse.is_policy_block``: the record's category is ``SAFETY_REFUSAL`` or the
  enforcement refused a tool call) is counted by the firewall's ops (``PolicyBlocks``) in
  the same unit, so a turn that never commits counts nothing; when its detector fires,
  the cool-down (or the automatic block) rides along and the record carries the category
  ``ABUSE_SUSPECTED`` (``as_abuse``, when ``acts``).
"""

from dataclasses import replace

from acf.domain.abuse import ABUSE_CATEGORY
from acf.domain.config_versions import RecordFacts, record_facts
from acf.domain.handoff import HandoffPolicy
from acf.domain.records import TurnRecord
from acf.domain.turns import Turn
from acf.ports.firewall import BlockCustomer
from acf.ports.handoffs import EnterHuman, HandoffSource
from acf.ports.session_modes import CountFallback, StartCooldown
from acf.ports.turn_store import SaveTurnRecord
from acf.service.turn_progress_units import Ops

FALLBACK_RULE_REASON = "fallbacks"


def record_in(ops: Ops) -> TurnRecord:
    """The turn record a unit saves (every ending unit saves one)."""
    for op in ops:
        if isinstance(op, SaveTurnRecord):
            return op.record
    raise ValueError("the unit saves no turn record")


def rule_hands_off(fallbacks: int, after_fallbacks: int) -> bool:
    """Whether one more fallback answer (``fallbacks`` before it) hands the session off."""
    return after_fallbacks > 0 and fallbacks + 1 >= after_fallbacks


def trigger_facts(record: TurnRecord) -> RecordFacts:
    """The record's facts as the fallback rule reads them: a router that fell back to another
    route answered with that route's own answer, which the canary counts as a fallback but
    the rule does not (the customer was answered)."""
    details = {k: v for k, v in record.details.items() if k != "routing_reason"}
    return record_facts(replace(record, details=details))


def handoff_ops(
    turn: Turn,
    *,
    handoff: str | None,
    facts: RecordFacts,
    fallbacks: int,
    policy: HandoffPolicy,
    at_ms: int,
) -> Ops:
    """The handoff triggers of an ending turn: ``handoff`` is what the pipeline asked for
    (``PipelineResult.handoff``), ``facts`` the turn record's, ``fallbacks`` the session's
    count before this turn."""
    ops: Ops = []
    entering = bool(handoff)
    if handoff:
        ops.append(_enter(turn, handoff, HandoffSource.PIPELINE, policy, at_ms))
    if facts.fallback:
        ops.append(CountFallback(turn.session_id, at_ms))
        if not entering and rule_hands_off(fallbacks, policy.after_fallbacks):
            ops.append(_enter(turn, FALLBACK_RULE_REASON, HandoffSource.RULE, policy, at_ms))
    return ops


def _enter(
    turn: Turn, reason: str, source: HandoffSource, policy: HandoffPolicy, at_ms: int
) -> EnterHuman:
    return EnterHuman(
        turn.tenant, turn.session_id, reason, source, at_ms, turn.trace_id, notice=policy.notice
    )


def acts(refusal: Ops) -> bool:
    """Whether the firewall's ops for a refusal hold the session (a cool-down or a block),
    beyond counting it."""
    return any(isinstance(op, StartCooldown | BlockCustomer) for op in refusal)


def blocks_in(refusal: Ops) -> list[BlockCustomer]:
    """The automatic blocks among the firewall's ops (their sessions are woken after the
    commit)."""
    return [op for op in refusal if isinstance(op, BlockCustomer)]


def as_abuse(ops: Ops) -> Ops:
    """The unit with its record's category set to ``ABUSE_SUSPECTED`` (the firewall's
    cool-down rides in it); the category it had is kept as ``details.abuse_of``."""
    changed: Ops = []
    for op in ops:
        if isinstance(op, SaveTurnRecord):
            record = op.record
            was = record_facts(record).category
            details = {**record.details, "category": ABUSE_CATEGORY, "abuse_of": was}
            op = SaveTurnRecord(replace(record, details=details))
        changed.append(op)
    return changed
