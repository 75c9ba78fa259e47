"""What a tenant's canary is doing, for the API and the console: the pointer, both arms'
stats since the current share began, and the last lifecycle decisions (newest first),
including whether the last canary was rolled back automatically and why."""

from dataclasses import dataclass

from acf.domain.config_versions import ArmStats, ConfigPointer
from acf.domain.events import EventKind, FabricEvent
from acf.domain.ids import TenantId
from acf.ports.clock import Clock
from acf.ports.event_store import EventQuery
from acf.ports.store import Store

DECISIONS = (
    EventKind.CONFIG_PROMOTED,
    EventKind.CONFIG_ROLLED_BACK,
    EventKind.CONFIG_CANARY_STARTED,
    EventKind.CONFIG_CANARY_ADVANCED,
    EventKind.CONFIG_CANARY_ROLLED_BACK,
)
RECENT_MS = 30 * 24 * 3600 * 1000
"""How far back decisions are read."""
PAGE = 500
KEPT = 20


@dataclass(frozen=True, slots=True)
class CanaryStatus:
    pointer: ConfigPointer | None
    since_ms: int | None
    """When the canary's current share began: the arms' stats count from there."""
    live: ArmStats | None
    canary: ArmStats | None
    decisions: list[FabricEvent]
    """The last lifecycle decisions, newest first."""
    last_rollback: FabricEvent | None
    """The last ``config.canary_rolled_back`` when no canary started since (a banner)."""


def is_automatic(event: FabricEvent) -> bool:
    """A decision made by acf (the canary controller), not by an API key or a person."""
    actor = str(event.data.get("actor", ""))
    return event.data.get("automatic") is True or not actor.startswith(("key ", "cli "))


def unanswered_rollback(newest_first: list[FabricEvent]) -> FabricEvent | None:
    """The canary rollback nobody has moved on from: the newest ``canary_rolled_back``,
    when no canary started (and no promote happened) after it. Pure."""
    for event in newest_first:
        if event.kind is EventKind.CONFIG_CANARY_ROLLED_BACK:
            return event
        if event.kind in (EventKind.CONFIG_CANARY_STARTED, EventKind.CONFIG_PROMOTED):
            return None
    return None


async def canary_status(store: Store, clock: Clock, tenant: TenantId) -> CanaryStatus:
    versions = store.config_versions
    pointer = await versions.pointer(tenant)
    since = live = canary = None
    if pointer is not None and pointer.canary is not None:
        # what the canary watch judges: live since the canary started, the canary since its
        # current share began
        since = pointer.canary_step_at_ms or pointer.canary_started_at_ms or 0
        if pointer.live is not None:
            started = pointer.canary_started_at_ms or since
            live = await versions.arm_stats(tenant, pointer.live, started)
        canary = await versions.arm_stats(tenant, pointer.canary, since)
    decisions = await _recent_decisions(store, tenant, clock.now_ms() - RECENT_MS)
    return CanaryStatus(pointer, since, live, canary, decisions, unanswered_rollback(decisions))


async def _recent_decisions(store: Store, tenant: TenantId, from_ms: int) -> list[FabricEvent]:
    kept: list[FabricEvent] = []
    after = 0
    while True:
        # A lookup, not a cursor: every decision committed by now, at once.
        query = EventQuery(None, DECISIONS, after, from_ms, None, PAGE, in_commit_order=False)
        page = await store.events.query(tenant, query)
        kept = (kept + page)[-KEPT:]
        if len(page) < PAGE:
            return list(reversed(kept))
        after = page[-1].event_id or after
