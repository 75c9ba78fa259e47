"""Asking for a dead letter's replay (DESIGN §16): the one use case behind
``POST /v1/dead-letters/{id}/replay`` and ``acf dead-letters replay``.

The request is one guarded write (``RequestReplay``: a letter's replay is requested at
most once) with its ``dead_letter.replay_requested`` event; then the session is woken.
Its driver, finding nothing else to do, runs the letter as a REPLAY turn (an empty range)
whose commit records that the letter ran (``session_driver``, ``turn_outcomes``). A lost
wake-up costs latency only: the recovery scan finds requested replays that have not run.
"""

from collections.abc import Awaitable, Callable
from dataclasses import replace

import structlog

from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.ids import SessionId, TenantId
from acf.ports.clock import Clock
from acf.ports.dead_letters import AlreadyReplayed, DeadLetter, NoSuchDeadLetter, RequestReplay
from acf.ports.event_store import AppendEvent
from acf.ports.store import Store

log = structlog.get_logger("acf.dead_letters")

Wake = Callable[[TenantId, SessionId], Awaitable[None]]


async def request_replay(
    store: Store, wake: Wake, clock: Clock, tenant: TenantId, dead_letter_id: str
) -> DeadLetter:
    """Mark the tenant's dead letter for replay and wake its session; returns the letter
    as marked. Raises ``NoSuchDeadLetter`` (also for another tenant's id) and
    ``AlreadyReplayed`` (requested before: a letter replays once)."""
    letter = await store.dead_letters.get(tenant, dead_letter_id)
    if letter is None:
        raise NoSuchDeadLetter(f"no dead letter {dead_letter_id!r}")
    if letter.replay_requested_at_ms is not None:
        raise AlreadyReplayed(f"dead letter {dead_letter_id!r} was already replayed")
    now = clock.now_ms()
    event = FabricEvent(
        EventKind.DEAD_LETTER_REPLAY_REQUESTED,
        now,
        Correlation(tenant, letter.trace_id, letter.session_id),
        {"dead_letter_id": dead_letter_id, "turn_id": letter.turn_id},
    )
    # The guard decides a race between two requests: one commits, the other raises.
    await store.uow.commit(tenant, [RequestReplay(dead_letter_id, now), AppendEvent(event)])
    log.info(
        "dead_letter.replay_requested",
        tenant=tenant,
        session_id=letter.session_id,
        dead_letter_id=dead_letter_id,
    )
    await wake(tenant, letter.session_id)
    return replace(letter, replay_requested_at_ms=now)
