"""Writes that move a session between the agent and the abuse firewall's modes, and the
counters the tenant's handoff rule reads. Human mode's writes are in ``acf.ports.handoffs``,
the block list's in ``acf.ports.firewall``."""

from dataclasses import dataclass

from acf.domain.ids import SessionId, TenantId
from acf.domain.modes import SessionMode
from acf.ports.unit_of_work import WriteOp


@dataclass(frozen=True, slots=True)
class CheckMode(WriteOp[None]):
    """Guard: the session's mode is ``mode``, else ``Conflict("mode")``."""

    session_id: SessionId
    mode: SessionMode


@dataclass(frozen=True, slots=True)
class StartCooldown(WriteOp[bool]):
    """Hold the session until ``until_ms``: ``agent`` → ``cooldown``, or extend a running
    cool-down (never shortens it). Returns True only when the session entered the cool-down
    (agent → cooldown) — then, and only then, the unit also queues the one notice, writes
    ``abuse.cooldown_started`` and counts the cool-down in the customer's day bucket
    ``acf.ports.firewall.COOLDOWN_BUCKET`` (``auto_block_after`` reads it). Sessions in
    human or blocked mode are left as they are (returns False). Writes ``abuse.suspected``
    {detector, detail} every time."""

    tenant: TenantId
    session_id: SessionId
    until_ms: int
    detector: str
    detail: str
    at_ms: int
    trace_id: str
    notice: str | None = None
    """The polite notice queued (as an outbox row, author ``system``) when the cool-down
    starts; None sends none (a channel that cannot reply)."""


@dataclass(frozen=True, slots=True)
class EndCooldown(WriteOp[bool]):
    """``cooldown`` → ``agent`` if ``mode_until_ms <= at_ms`` (or ``force``); writes
    ``abuse.cooldown_ended``. Returns False (and writes nothing) when the session is not in a
    cool-down that has ended."""

    tenant: TenantId
    session_id: SessionId
    at_ms: int
    force: bool = False
    by: str | None = None


@dataclass(frozen=True, slots=True)
class CountFallback(WriteOp[int]):
    """``fallbacks + 1``; returns the new count (the tenant's handoff rule compares it)."""

    session_id: SessionId
    at_ms: int
