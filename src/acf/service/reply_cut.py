"""Cutting the paced rest of a reply when the customer wrote again (DESIGN §3 invariant 6's
one exception, §16).

A multi-part reply goes out part by part, with a pause before each later part (the
channel's ``segment_pacing_ms`` or the pipeline's ``delay_ms``). When the customer writes
during such a pause, the rest of that reply answers a conversation that has moved on: after
the pause, before a later part's first try, the relay looks at the session, and if it holds
a message newer than the reply's turn (``last_seq > to_seq``) it cuts that part and every
later unsent part of the reply instead of sending them. The newer message's turn answers.

The cut is one unit: the delivery lease's fence (no other relay can be sending these rows),
one conditional write per part (``CutUnsentPart``: pending, never attempted, not a first
part, and the newer message, all checked in the write) and the ``reply.cut`` event. If any
condition no longer holds, nothing is cut. A reply's first part is never cut, nor a part
the relay already tried, nor any part of a turn not the agent's (an operator's reply).
"""

import asyncio
from collections.abc import Awaitable, Sequence
from enum import Enum
from typing import Any

import structlog

from acf.domain.errors import Conflict
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.modes import TurnKind
from acf.domain.signals import DeliveryStatus
from acf.ports.clock import Clock
from acf.ports.event_store import AppendEvent
from acf.ports.lease import CheckFence, Lease
from acf.ports.outbox import CutUnsentPart, OutboxRow
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp

log = structlog.get_logger("acf.reply_cut")


class CutOutcome(Enum):
    KEEP = "keep"
    """No newer message: send the part."""
    CUT = "cut"
    """The part and the rest of its reply are cut (committed with ``reply.cut``)."""
    REFUSED = "refused"
    """The cut's conditions no longer held when written (another relay took the delivery
    lease, or tried a part): nothing was cut; look at the session again later."""


def may_cut(row: OutboxRow, paused_ms: int) -> bool:
    """Whether the relay looks for a newer message before sending ``row``: a later part
    of its reply, on its first try, right after a pacing pause."""
    return (
        paused_ms > 0
        and row.position > 0
        and row.attempts == 0
        and row.parts_sent == 0
        and row.status is DeliveryStatus.PENDING
    )


def unsent_rest(rows: Sequence[OutboxRow], row: OutboxRow) -> list[OutboxRow]:
    """``row`` and the later parts of its reply among ``rows`` (the session's undelivered
    rows, in delivery order) that never went out."""
    start = next(i for i, r in enumerate(rows) if r.outbox_id == row.outbox_id)
    return [
        r
        for r in rows[start:]
        if r.turn_id == row.turn_id
        and r.position >= row.position
        and r.status is DeliveryStatus.PENDING
        and r.attempts == 0
        and r.parts_sent == 0
    ]


async def cut_if_answered_later(
    store: Store,
    clock: Clock,
    lease: Lease,
    row: OutboxRow,
    rows: Sequence[OutboxRow],
    correlating: Awaitable[Correlation],
) -> CutOutcome:
    """Cut ``row`` and the rest of its reply if the session holds a message newer than
    the reply's turn. ``lease`` is the session's delivery lease, held by the caller;
    ``correlating`` gives the turn's correlation (it never raises)."""
    tenant = lease.tenant
    session, turn = await asyncio.gather(
        store.sessions.get(tenant, row.session_id), store.turns.get(tenant, row.turn_id)
    )
    if session is None or turn is None or session.last_seq <= turn.to_seq:
        return CutOutcome.KEEP  # no newer message (or an operator's notice: no turn)
    if turn.kind is not TurnKind.AGENT:
        return CutOutcome.KEEP  # an operator's reply is never cut: a person chose to send it
    rest = unsent_rest(rows, row)
    now = clock.now_ms()
    data: dict[str, Any] = {
        "turn_id": row.turn_id,
        "outbox_ids": [r.outbox_id for r in rest],
        "positions": [r.position for r in rest],
        "to_seq": turn.to_seq,
        "newer_seq": session.last_seq,
    }
    ops: list[WriteOp[Any]] = [
        CheckFence(lease.session_id, lease.fence, now),
        *(CutUnsentPart(r.outbox_id, now) for r in rest),
        AppendEvent(FabricEvent(EventKind.REPLY_CUT, now, await correlating, data)),
    ]
    try:
        await store.uow.commit(tenant, ops)
    except Conflict as conflict:
        log.warning(
            "delivery.cut_refused",
            tenant=tenant,
            session_id=row.session_id,
            outbox_id=row.outbox_id,
            error=conflict.reason,
        )
        return CutOutcome.REFUSED
    log.info(
        "delivery.cut",
        tenant=tenant,
        session_id=row.session_id,
        turn_id=row.turn_id,
        outbox_ids=data["outbox_ids"],
        newer_seq=session.last_seq,
    )
    return CutOutcome.CUT
