"""The ``ExecuteRequest`` of a turn, from its context (DESIGN §16, seed 004 Story 3).

- ``message.text``: the turn's messages, one line each (a button reply reads as its title,
  media as a note); on a REPLAY turn (no messages) the text of the request that failed
  (``replayed_text``), and the answer it carried, if any (``replays``);
  ``message.buttons``: the buttons of the last reply the customer saw, when they answered
  by pressing one;
- ``chat_history``: what the customer saw before the turn, from the LLM agent's history
  builder (``acf.pipelines.llm.history``): delivered replies only, in order with the
  customer's messages, notes of the service's earlier tool calls, within
  ``history_tokens`` and then the last ``history_messages`` messages, roles ``user`` and
  ``assistant`` (an operator's reply marked ``[operator <name>]``, a notice ``[notice]``);
  a rolling summary already in the session state (an LLM agent of the same conversation
  wrote it) comes first as a ``system`` item; none is ever written here; the note of an
  operator who handed the conversation back (``meta.handover``, until the agent's next
  commit) comes last as a ``system`` item (even with ``history_messages`` 0);
- ``user_context``: the fields the agent lists in ``user_context``, where known: the tenant,
  the customer's address on the channel, the channel, the agent's locale and, when listed
  (not by default: it tells the service the customer's other addresses), the customer's
  linked identities on the other channels (``ctx.linked_identities()``).

The same context gives the same request (no clock is read), so a retry or a recovery
asks the same, and sends the same execution key.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from acf.config.agent_service import AgentServicePipelineFields
from acf.domain.messages import InboundMessage
from acf.pipelines.agent_service.asks import SessionPlan
from acf.pipelines.agent_service.protocol import (
    Answer,
    Button,
    CustomerMessage,
    ExecuteRequest,
    HistoryItem,
    LinkedIdentity,
    Role,
    UserContext,
)
from acf.pipelines.llm.history import history_window
from acf.pipelines.llm.people import handover_note
from acf.ports.pipeline import TurnContext

HISTORY_MODEL = ""
"""The service's model is unknown to acf: history tokens are estimated."""
SUMMARY_LEAD = "Summary of the earlier conversation:\n"


def message_text(message: InboundMessage) -> str:
    """One customer message as text: a button reply's title (or id), else its text; a
    note per attachment."""
    parts: list[str] = []
    if message.button is not None:
        parts.append((message.button.title or message.button.button_id).strip())
    elif message.text and message.text.strip():
        parts.append(message.text.strip())
    for media in message.media:
        caption = f": {media.caption}" if media.caption else ""
        parts.append(f"[the customer sent {media.mime_type or 'a file'}{caption}]")
    return "\n".join(p for p in parts if p)


def turn_text(messages: Sequence[InboundMessage]) -> str:
    """The turn's messages as one text, one line (or more) per message."""
    return "\n".join(t for t in (message_text(m) for m in messages) if t)


def replayed_text(request: Mapping[str, Any]) -> str:
    """The customer's text in a dead letter's request: its ``message.text`` (a call this
    pipeline recorded), else its ``messages``, one a line (a turn that ended FAILED:
    ``acf.service.dead_letter_units.failed_turn_request``); empty when it has neither."""
    message = request.get("message")
    text = message.get("text") if isinstance(message, Mapping) else None
    if isinstance(text, str):
        return text
    messages = request.get("messages")
    if not isinstance(messages, list | tuple):
        return ""
    return "\n".join(m for m in messages if isinstance(m, str) and m.strip())


def pressed_buttons(
    messages: Sequence[InboundMessage], replies: Sequence[Mapping[str, Any]]
) -> list[Button] | None:
    """The buttons of the last reply the customer saw, when a message of the turn pressed
    one of them."""
    if not replies or not any(m.button is not None for m in messages):
        return None
    raw = replies[-1].get("buttons") or []
    buttons = [
        Button(id=str(b["id"]), title=str(b.get("title") or b["id"]))
        for b in raw
        if isinstance(b, Mapping) and b.get("id")
    ]
    return buttons or None


def customer_message(ctx: TurnContext) -> CustomerMessage:
    letter = ctx.replay
    if letter is not None and not ctx.messages:
        return CustomerMessage(text=replayed_text(letter.request))
    return CustomerMessage(
        text=turn_text(ctx.messages),
        buttons=pressed_buttons(ctx.messages, ctx.replies_history),
    )


async def user_context(ctx: TurnContext, fields: AgentServicePipelineFields) -> UserContext:
    """What the service learns about the customer: the fields the agent lists (linked
    identities: the customer's addresses on the other channels, when the tenant linked
    them)."""
    wanted = set(fields.user_context)
    newest = [*ctx.history, *ctx.messages]
    key = newest[-1].key if newest else None

    def shown(name: str, value: str | None) -> str | None:
        return value if name in wanted and value else None

    linked = None
    if "linked_identities" in wanted and key is not None:
        others = sorted((await ctx.linked_identities()).items())
        linked = [
            LinkedIdentity(channel=channel, address=address)
            for channel, address in others
            if channel != key.channel.value
        ] or None
    return UserContext(
        tenant=ctx.correlation.tenant,
        customer_id=shown("customer_id", key.customer if key is not None else None),
        channel=shown("channel", key.channel.value if key is not None else None),
        locale=shown("locale", fields.locale),
        linked_identities=linked,
    )


async def chat_history(
    ctx: TurnContext, fields: AgentServicePipelineFields, tool_log: Sequence[Mapping[str, Any]]
) -> list[HistoryItem]:
    """The conversation before the turn, as the service reads it (see the module); with
    ``history_messages`` 0, only the handover note (when there is one)."""
    if fields.history_messages == 0:
        handover = handover_note(ctx.state)
        return [HistoryItem(role=Role.SYSTEM, content=handover)] if handover else []
    window = await history_window(
        ctx,
        budget_tokens=fields.history_tokens,
        model=HISTORY_MODEL,
        summarise=None,
        summary_every_turns=1,
        tool_log=list(tool_log),
    )
    items = [
        HistoryItem(role=Role(str(m["role"])), content=str(m["content"]))
        for m in window.messages[-fields.history_messages :]
    ]
    if window.summary:
        items.insert(0, HistoryItem(role=Role.SYSTEM, content=SUMMARY_LEAD + window.summary))
    if window.handover:
        items.append(HistoryItem(role=Role.SYSTEM, content=window.handover))
    return items


async def build_request(
    ctx: TurnContext,
    fields: AgentServicePipelineFields,
    plan: SessionPlan,
    tool_log: Sequence[Mapping[str, Any]],
) -> ExecuteRequest:
    """The request of this turn, going where ``plan`` says."""
    message = customer_message(ctx)
    answer = None
    if plan.answer_to is not None:
        answer = Answer(ask_id=plan.answer_to, text=message.text)
    session_id = ctx.correlation.session_id
    if session_id is None:
        raise ValueError("a turn's correlation names its session")
    return ExecuteRequest(
        conversation_id=session_id,
        agent_session_id=plan.agent_session_id,
        message=message,
        chat_history=await chat_history(ctx, fields, tool_log),
        user_context=await user_context(ctx, fields),
        answer=answer,
    )
