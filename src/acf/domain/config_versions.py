"""Configuration versions (DESIGN §17): a tenant's immutable configurations, numbered 1, 2,
3… per tenant and labelled ``"v{n}"``, and the tenant's pointer (which version is live,
which is on canary and at what share). Pure values; the store is
``acf.ports.config_versions``.

A version's status moves DRAFT → LIVE (``promote``) or DRAFT → CANARY (``canary``), and
LIVE or CANARY → RETIRED when another version takes its place. ``rolled_back`` marks a
version retired by a rollback (live or canary): its open sessions re-pin to the live
version at their next turn, and it is never promoted again. A retired version that was not
rolled back may be promoted again (a roll-forward to an older configuration).

A session's canary arm is ``canary_arm(session_id, share)``: a pure function of its id, so
the arm is sticky and needs no stored draw.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from acf.domain.ids import TenantId
from acf.domain.records import TurnRecord
from acf.domain.turns import TurnPhase


class VersionStatus(StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    CANARY = "canary"
    RETIRED = "retired"


class ApplyMode(StrEnum):
    SESSION_CLOSE = "session_close"
    """A running session keeps its pinned version until it closes."""
    NEXT_TURN = "next_turn"
    """A running session moves to the new live version at its next turn (state upcast)."""


def version_label(number: int) -> str:
    """The label events, logs, metrics and TurnRecords carry: ``"v{number}"``."""
    return f"v{number}"


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    tenant: TenantId
    number: int
    content_hash: str
    """``"sha256:<16 hex>"`` of the canonical JSON of ``source``."""
    source: Mapping[str, Any]
    """The version's source document, secrets as ``${REF}`` (never resolved)."""
    resolved: Mapping[str, Any]
    """The tenant's fully resolved (merged, validated) configuration as JSON."""
    provenance: Mapping[str, Any]
    """The merge log: dotted key → ``{"layer", "source", "value"}``."""
    author: str
    message: str
    git_commit: str | None
    apply: ApplyMode
    status: VersionStatus
    rolled_back: bool
    """Retired by a rollback (live or canary): its sessions re-pin to the live version."""
    created_at_ms: int
    updated_at_ms: int
    gates: Mapping[str, Any]
    """Recorded checks, e.g. ``{"scenarios": {"passed": true, "at_ms": …, "summary": …}}``."""

    @property
    def label(self) -> str:
        return version_label(self.number)


@dataclass(frozen=True, slots=True)
class ConfigPointer:
    """One row per tenant: what new sessions are assigned."""

    tenant: TenantId
    live: int | None
    previous_live: int | None
    """The live version before the current one (what ``rollback`` returns to)."""
    canary: int | None
    canary_share: int
    """Percent 0..100 of new sessions given the canary (0 when no canary)."""
    canary_started_at_ms: int | None
    canary_step_at_ms: int | None
    """When the current share began."""
    updated_at_ms: int


def canary_arm(session_id: str, share: int) -> bool:
    """True when the session falls in the canary's ``share`` (percent): the first 8 hex
    digits of sha256(session_id), as an integer, modulo 100, below ``share``. Pure and
    sticky: the same session always lands in the same arm for a given share, and a session
    in the canary at share s stays in it at any larger share."""
    if share <= 0:
        return False
    if share >= 100:
        return True
    digest = hashlib.sha256(session_id.encode()).hexdigest()
    return int(digest[:8], 16) % 100 < share


@dataclass(frozen=True, slots=True)
class ArmStats:
    """The turns of one version since a time (one arm of a canary comparison)."""

    turns: int
    failed: int
    fallback: int
    handoff: int
    latency_p95_ms: int | None
    """None when there are no turns with a duration."""

    @property
    def failure_rate(self) -> float:
        return self.failed / self.turns if self.turns else 0.0

    @property
    def fallback_rate(self) -> float:
        return self.fallback / self.turns if self.turns else 0.0

    @property
    def handoff_rate(self) -> float:
        return self.handoff / self.turns if self.turns else 0.0


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """What a canary compares of one TurnRecord (copied to columns when it is stored)."""

    category: str | None
    fallback: bool
    handoff: bool
    duration_ms: int
    """The turn's run time: its record's start to end, less the time it held its ready
    reply while the customer typed (``details["held_ms"]``). A hold is waiting on purpose
    (a channel's ``typing_hold_ms``), not slowness: a canary that holds more must not look
    slower for it."""


_FALLBACK_CATEGORIES = frozenset({"FAILED"})
"""LLM categories whose reply was the fallback (enforcement withheld the model's)."""


def record_facts(record: TurnRecord) -> RecordFacts:
    """The record's category (``details["category"]``, else the LLM pipeline's
    ``details["llm"]["outcome"]``, else the first of ``details["outcomes"]``), whether a
    fallback answered (the turn failed and its fallback text went out, the router fell back
    to another route, the rules pipeline used its fallback reply, or LLM enforcement
    withheld the reply), whether it handed off (``details["handoff"]`` or a HANDOFF
    category) and its duration without its typing hold. Pure."""
    details = record.details
    llm = details.get("llm")
    llm_outcome = llm.get("outcome") if isinstance(llm, Mapping) else None
    outcomes = details.get("outcomes")
    outcomes = list(outcomes) if isinstance(outcomes, list | tuple) else []
    category: str | None = None
    for candidate in (details.get("category"), llm_outcome, outcomes[0] if outcomes else None):
        if isinstance(candidate, str) and candidate:
            category = candidate
            break
    fallback = (
        record.outcome is TurnPhase.FAILED
        or details.get("routing_reason") == "fallback"
        or "fallback" in outcomes
        or llm_outcome in _FALLBACK_CATEGORIES
        or bool(details.get("fallback"))
    )
    handoff = bool(details.get("handoff")) or (category or "").upper() == "HANDOFF"
    return RecordFacts(
        category=None if category is None else category[:64],
        fallback=fallback,
        handoff=handoff,
        duration_ms=max(0, record.ended_at_ms - record.started_at_ms - _held_ms(details)),
    )


def _held_ms(details: Mapping[str, Any]) -> int:
    """The record's ``held_ms`` (0 when absent or not a duration)."""
    held = details.get("held_ms")
    if isinstance(held, bool) or not isinstance(held, int | float) or held < 0:
        return 0
    return int(held)
