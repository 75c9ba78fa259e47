"""What one attempt's pipeline sees, and shows the customer while it runs.

The context's reads go to the store together (one hop): the session, the turn's messages,
the history window, the recent replies and the turn group. The replies the pipeline sees
are those the customer could see (``visible_replies``): never a part that was cut, failed
or superseded by its fallback copy (DESIGN §16). A number answering buttons the
channel showed as numbered options becomes that button (``domain.numbered_answers``); the
capabilities are those of the channel of the turn's newest message (where the customer
wrote last). While the pipeline runs, the typing indicator shows where the channel has one.
"""

import asyncio
from typing import Any

from acf.domain.errors import Conflict
from acf.domain.numbered_answers import with_numbered_answers
from acf.domain.signals import DeliveryStatus
from acf.domain.turns import TurnGroup
from acf.ports.agent_binding import AgentBinding
from acf.ports.outbox import OutboxRow
from acf.service.irreversible_gate import IrreversibleGate
from acf.service.running_turn import RunningTurn
from acf.service.runtime_parts import RuntimeParts
from acf.service.turn_context import RunningTurnContext
from acf.service.typing_indicator import keep_typing

SEEN = frozenset({DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ})
"""Replies that reached the customer's provider (a failed or pending one was not seen)."""


async def attempt_context(
    p: RuntimeParts, binding: AgentBinding, run: RunningTurn, gate: IrreversibleGate
) -> tuple[RunningTurnContext, int, TurnGroup]:
    """The context of an attempt, the session's state version and the turn group."""
    t, settings = run.turn, binding.settings
    limit = settings.history_limit
    session, messages, history, replies, group = await asyncio.gather(
        p.store.sessions.get(t.tenant, t.session_id),
        p.store.messages.read_range(t.tenant, t.session_id, t.from_seq, t.to_seq),
        p.store.messages.recent(t.tenant, t.session_id, t.from_seq, limit) if limit else _nothing(),
        # A few replies at least: a number may answer the buttons of the last one seen.
        p.store.outbox.for_session(t.tenant, t.session_id, last=max(limit, 5)),
        p.store.turns.get_group(t.tenant, t.group_id),
    )
    if session is None or group is None:
        raise Conflict(f"turn {t.turn_id} lost its session or group")
    seen = [r for r in replies if r.status in SEEN]
    last_seen = seen[-1] if seen else None
    shown_on = None
    if last_seen is not None:
        went_to = last_seen.route.channel if last_seen.route else run.key.channel
        shown_on = settings.capabilities_for(went_to)
    messages = with_numbered_answers(
        messages, None if last_seen is None else last_seen.payload, shown_on
    )
    channel = messages[-1].key.channel if messages else run.key.channel
    ctx = RunningTurnContext(
        run,
        gate,
        messages,
        history,
        visible_replies(replies)[-limit:] if limit else [],
        session.state,
        binding.resolved,
        p.clock.now_ms() + settings.deadline_ms,
        binding.tools,
        settings.capabilities_for(channel),
    )
    return ctx, session.state_version, group


def visible_replies(replies: list[OutboxRow]) -> list[dict[str, Any]]:
    """What the customer could see of ``replies`` (oldest first): rows sent (or delivered,
    read), and a pending row only if it is its reply's first part (it will go out: only
    later parts are cut). Never a cut or failed part; a row that fell back appears once, as
    its copy. Each entry is the row's payload with ``at_ms`` (when it was queued),
    ``turn_id`` and ``status``."""
    return [
        {**r.payload, "at_ms": r.created_at_ms, "turn_id": r.turn_id, "status": r.status.value}
        for r in _once(replies)
        if r.status in SEEN or (r.status is DeliveryStatus.PENDING and r.position == 0)
    ]


def _once(replies: list[OutboxRow]) -> list[OutboxRow]:
    """The replies as the conversation had them: a row that fell back appears once, as
    its copy (the same words on the other channel)."""
    replaced = {r.fallback_of for r in replies if r.fallback_of is not None}
    return [r for r in replies if r.outbox_id not in replaced]


def show_typing(
    p: RuntimeParts, run: RunningTurn, ctx: RunningTurnContext
) -> "asyncio.Task[None] | None":
    """The typing indicator while the pipeline runs, where the channel shows one."""
    if p.show_typing is None or not ctx.capabilities.typing_indicator or not ctx.messages:
        return None
    newest = ctx.messages[-1]
    show = keep_typing(
        p.show_typing, newest.key, newest.provider_message_id, ctx.capabilities, p.clock
    )
    return p.tasks.spawn(show, f"typing:{run.turn.turn_id}")


async def _nothing() -> list[Any]:
    return []
