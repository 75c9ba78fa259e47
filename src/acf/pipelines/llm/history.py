"""The history the model sees (DESIGN §16, seed 002 R7, seed 004 Story 3): what the
customer saw, by a token budget, with a rolling summary of what no longer fits.

The timeline has three kinds of entries, ordered by time:

- the customer's earlier messages (``ctx.history``, at ``received_at_ms``): role ``user``;
  a button reply reads as its title, media as ``[attachment ...]``;
- the replies committed and delivered (``ctx.replies_history``, at ``at_ms``, their commit):
  role ``assistant``, buttons listed after the text; a part that failed or was cut is not
  there (``status`` ``failed`` or ``cut`` is skipped too). A reply a person wrote is
  marked: an operator's ``[operator <name>]``, a notice ``[notice]``
  (``acf.pipelines.llm.people``). A reply without ``at_ms`` sits right after the nearest
  earlier reply that has one, else right before the nearest later one, else (no reply has a
  time) after the history's messages, keeping the replies' order;
- earlier tool calls (the pipeline's tool log, by default the LLM pipeline's
  ``data.llm.tool_log``: ``at_ms``, ``tool``, ``args``, ``outcome``, ``summary``): short
  assistant-side notes such as
  ``[earlier tool call] refund_order(order_id="R-1") -> succeeded: refund R-0001``, never
  tool-call messages (an API rejects a tool message without the call that asked for it).

At equal times a message comes before a tool note, and a note before a reply (a reply
commits after the messages it answers). Consecutive entries of one role merge into one
message. The window keeps the newest entries whose messages and summary fit the budget;
an entry already covered by the summary is never shown again. What falls out is folded into
the summary by one model call (``summarise``, memoised by the pipeline) at most every
``summary_every_turns`` committed turns; in between it is only dropped, and the older
summary still shows (as it does when the summary call fails or answers nothing: the turn
goes on, and the next turn tries again). A first summary, or a long gap, folds at most
``FOLD_BUDGET_FACTOR`` times the budget (the newest of it): older entries are dropped. A
caller without a model (``summarise`` None: the agent service's history) never refreshes
the summary: what falls out of the window is dropped.

A session an operator handed back (``meta.handover`` in its state) gets the handover note
(``HistoryWindow.handover``), for a system message right before the turn's own messages.

Everything here is a function of the context's data: the same inputs give the same window
and the same summary request (no clock is read).
"""

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from acf.domain.messages import InboundMessage
from acf.pipelines.llm.people import (
    handover_note,
    mark_lines,
    reply_mark,
    reply_speaker,
    unmark_lines,
)
from acf.pipelines.llm.state import llm_state
from acf.pipelines.llm.summary import (
    TOOL_NOTE_PREFIX,
    Position,
    StoredSummary,
    summary_request,
    trimmed,
)
from acf.pipelines.llm.tokens import (
    ESTIMATE_SLACK_PER_MESSAGE,
    TOKENS_PER_MESSAGE,
    TokenCounter,
    load_counter,
)
from acf.ports.pipeline import TurnContext

FOLD_BUDGET_FACTOR = 2
SUMMARY_SHARE = 4
"""The summary may take a quarter of the budget (at least ``MIN_SUMMARY_TOKENS``, at most
the whole budget)."""
MIN_SUMMARY_TOKENS = 64
NOT_DELIVERED = frozenset({"failed", "cut"})
NOTE_ARGS_CHARS = 160
NOTE_RESULT_CHARS = 200

CUSTOMER, TOOL, REPLY = 0, 1, 2
"""Entry kinds, also their rank at equal times."""
_SPEAKERS = {CUSTOMER: "Customer", TOOL: "Tool", REPLY: "Agent"}
_ROLES = {CUSTOMER: "user", TOOL: "assistant", REPLY: "assistant"}
_JOINERS = {"user": "\n", "assistant": "\n\n"}


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    messages: tuple[dict[str, Any], ...]
    """Chat-completions messages, oldest first, without the system message and without
    this turn's own messages."""
    summary: str | None
    """The rolling summary (the pipeline shows it in the system message)."""
    tokens: int
    """Tokens of ``messages`` (each with its per-message overhead, no reply priming) plus
    the summary's text."""
    state_patch: Mapping[str, Any] | None
    """To merge into the session state (a refreshed summary), or None."""
    handover: str | None = None
    """The note of an operator who handed the conversation back, until the agent's next
    commit (``people.handover_note``), or None."""
    marked: bool = False
    """Whether ``messages`` show a reply a person wrote or a notice (``people.PEOPLE_GUIDE``
    tells the model how to read the marks)."""


@dataclass(frozen=True, slots=True)
class Entry:
    order: Position
    """(time ms, kind, band, offset, id): a total order, stable from turn to turn."""
    kind: int
    text: str
    turn: str | None = None
    """The committing turn of a reply, where known."""
    speaker: str | None = None
    """Who said it in the summary's transcript, when not the kind's speaker (an operator)."""
    mark: str | None = None
    """The mark each line of ``text`` starts with: a reply a person wrote, or a notice."""

    @property
    def said(self) -> tuple[str, str]:
        """(speaker, text) for the summary's transcript: the speaker says who, unmarked."""
        text = unmark_lines(self.mark, self.text) if self.mark else self.text
        return self.speaker or _SPEAKERS[self.kind], text

    @property
    def role(self) -> str:
        return _ROLES[self.kind]


Summarise = Callable[[list[dict[str, Any]]], Awaitable[str]]
LLM_TOOL_LOG: Any = object()
"""``history_window``'s default ``tool_log``: the LLM pipeline's own (``data.llm.tool_log``)."""


async def history_window(
    ctx: TurnContext,
    *,
    budget_tokens: int,
    model: str,
    summarise: Summarise | None,
    summary_every_turns: int,
    tool_log: Any = LLM_TOOL_LOG,
) -> HistoryWindow:
    """The history for this turn's request, within ``budget_tokens`` (see the module).

    ``summarise`` None: the summary is never refreshed (one already stored still shows,
    and what falls out of the window is only dropped). ``tool_log``: the tool calls the
    notes come from (``{at_ms, tool, args, outcome, summary}`` each), by default the LLM
    pipeline's; ``model`` names the token encoding (an unknown one: the estimate)."""
    counter = await load_counter(model)
    budget = max(budget_tokens, 0)
    limit = min(budget, max(MIN_SUMMARY_TOKENS, budget // SUMMARY_SHARE))
    stored = StoredSummary.read(ctx.state)
    if tool_log is LLM_TOOL_LOG:
        tool_log = llm_state(ctx.state).get("tool_log")
    everything = timeline(ctx.history, ctx.replies_history, tool_log)
    through = stored.through
    fresh = [e for e in everything if through is None or e.order > through]
    # A summary written under a larger budget is cut to this one's share.
    summary = (trimmed(stored.text, limit, counter) or None) if stored.text else None
    kept = _fit(fresh, budget - _summary_tokens(summary, counter), counter)
    fallen = fresh[: len(fresh) - len(kept)]
    patch = None
    if summarise is not None and fallen and _refresh_due(everything, stored, summary_every_turns):
        folded = _fit(fallen, FOLD_BUDGET_FACTOR * budget, counter, merge=False)
        transcript = [e.said for e in folded]
        request = summary_request(stored.text, transcript, max_words=limit * 3 // 5)
        try:
            written = trimmed(await summarise(request), limit, counter)
        except Exception as exc:  # the turn goes on with the summary it had
            ctx.log.warning("llm.summary_failed", error=type(exc).__name__)
            written = ""
        if written:
            summary = written
            patch = StoredSummary.patch(written, fallen[-1].order, everything[-1].order)
            kept = _fit(kept, budget - _summary_tokens(summary, counter), counter)
    messages = merged(kept)
    tokens = _count(messages, counter) + _summary_tokens(summary, counter)
    marked = any(e.mark is not None for e in kept)
    return HistoryWindow(messages, summary, tokens, patch, handover_note(ctx.state), marked)


def timeline(
    history: Sequence[InboundMessage],
    replies: Sequence[Mapping[str, Any]],
    tool_log: Any = None,
) -> list[Entry]:
    """The conversation before the turn as ordered entries (see the module)."""
    entries = [e for e in (_customer(m) for m in history) if e is not None]
    entries.extend(_notes(tool_log))
    last_message_ms = max((m.received_at_ms for m in history), default=0)
    entries.extend(_replies(replies, last_message_ms))
    entries.sort(key=lambda e: e.order)
    return entries


def merged(entries: Sequence[Entry]) -> tuple[dict[str, Any], ...]:
    """Chat messages from entries: consecutive entries of one role become one message."""
    out: list[dict[str, Any]] = []
    for entry in entries:
        if out and out[-1]["role"] == entry.role:
            out[-1]["content"] += _JOINERS[entry.role] + entry.text
        else:
            out.append({"role": entry.role, "content": entry.text})
    return tuple(out)


def _customer(message: InboundMessage) -> Entry | None:
    parts: list[str] = []
    text = (message.text or "").strip()
    if text:
        parts.append(text)
    if message.button is not None:
        title = (message.button.title or message.button.button_id).strip()
        if title and title != text:
            parts.append(title if not text else f"[button: {title}]")
    for media in message.media:
        described = " ".join(p for p in (media.mime_type, media.caption) if p)
        parts.append(f"[attachment{': ' + described if described else ''}]")
    if not parts:
        return None
    order = (message.received_at_ms, CUSTOMER, 1, 0, f"{message.seq:012d}")
    return Entry(order, CUSTOMER, "\n".join(parts))


def _reply_text(reply: Mapping[str, Any]) -> str:
    parts: list[str] = []
    text = reply.get("text")
    if isinstance(text, str) and text.strip():
        parts.append(text.strip())
    titles = []
    for button in reply.get("buttons") or ():
        if isinstance(button, Mapping):
            title = button.get("title") or button.get("id")
            if title:
                titles.append(str(title))
        elif button:
            titles.append(str(button))
    if titles:
        parts.append(f"[buttons: {' | '.join(titles)}]")
    for media in reply.get("media") or ():
        name = urlsplit(str(media)).path.rstrip("/").rsplit("/", 1)[-1]
        parts.append(f"[attachment{': ' + name if name else ''}]")
    return "\n".join(parts)


def _replies(replies: Sequence[Mapping[str, Any]], last_message_ms: int) -> list[Entry]:
    shown = [
        (r, _reply_text(r))
        for r in replies
        if isinstance(r, Mapping) and str(r.get("status") or "").lower() not in NOT_DELIVERED
    ]
    shown = [(r, text) for r, text in shown if text]
    times = [_int(r.get("at_ms")) for r, _ in shown]
    timed = [i for i, t in enumerate(times) if t is not None]
    per_turn: dict[str, int] = {}
    entries = []
    for i, (reply, text) in enumerate(shown):
        turn = reply.get("turn_id")
        turn = str(turn) if turn else None
        if turn is not None:
            k = per_turn[turn] = per_turn.get(turn, -1) + 1
            ident = f"{turn}:{k:04d}"
        else:
            ident = f"#{i:06d}"
        at = times[i]
        if at is not None:
            order = (at, REPLY, 1, 0, ident)
        else:
            earlier = [j for j in timed if j < i]
            later = [j for j in timed if j > i]
            if earlier:
                order = (_at(times, earlier[-1]), REPLY, 2, i - earlier[-1], ident)
            elif later:
                order = (_at(times, later[0]), REPLY, 0, i, ident)
            else:
                order = (last_message_ms, REPLY, 2, i + 1, ident)
        mark = reply_mark(reply)
        if mark is not None:
            text = mark_lines(mark, text)
        speaker = reply_speaker(reply) if mark is not None else None
        entries.append(Entry(order, REPLY, text, turn, speaker, mark))
    return entries


def _at(times: list[int | None], index: int) -> int:
    at = times[index]
    assert at is not None
    return at


def _notes(tool_log: Any) -> list[Entry]:
    if not isinstance(tool_log, Sequence) or isinstance(tool_log, str):
        return []
    entries: list[Entry] = []
    seen: dict[tuple[int, str], int] = {}
    for call in tool_log:
        if not isinstance(call, Mapping):
            continue
        at, tool = _int(call.get("at_ms")), call.get("tool")
        if at is None or not isinstance(tool, str) or not tool:
            continue
        n = seen[(at, tool)] = seen.get((at, tool), -1) + 1
        order = (at, TOOL, 1, 0, f"{tool}:{n:04d}")
        entries.append(Entry(order, TOOL, f"{TOOL_NOTE_PREFIX} {tool_note(call)}"))
    return entries


def tool_note(call: Mapping[str, Any]) -> str:
    """``tool(arg=value, ...) -> outcome: summary``, each part cut to a short length."""
    args = call.get("args")
    shown = ""
    if isinstance(args, Mapping):
        shown = ", ".join(
            f"{name}={json.dumps(args[name], ensure_ascii=False, sort_keys=True, default=str)}"
            for name in sorted(args, key=str)
        )
    elif args is not None:
        shown = json.dumps(args, ensure_ascii=False, sort_keys=True, default=str)
    note = f"{call.get('tool')}({_cut(shown, NOTE_ARGS_CHARS)})"
    outcome = str(call.get("outcome") or "").strip()
    result = str(call.get("summary") or "").strip()
    if outcome or result:
        said = f"{outcome}: {result}" if outcome and result else outcome or result
        note += f" -> {_cut(said, NOTE_RESULT_CHARS)}"
    return note


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _summary_tokens(summary: str | None, counter: TokenCounter) -> int:
    return counter.text(summary) if summary else 0


def _overhead(counter: TokenCounter) -> int:
    """A message's tokens besides its content: the framing and the role."""
    return TOKENS_PER_MESSAGE + 1 + (0 if counter.exact else ESTIMATE_SLACK_PER_MESSAGE)


def _count(messages: Sequence[Mapping[str, Any]], counter: TokenCounter) -> int:
    return sum(counter.message(m) for m in messages)


def _fit(
    entries: Sequence[Entry], budget: int, counter: TokenCounter, *, merge: bool = True
) -> list[Entry]:
    """The newest ``entries`` that fit ``budget`` as messages (merged by role when
    ``merge``), oldest first. Each entry is counted on its own (a joined message counts at
    most that); the chosen messages are then counted as sent and trimmed if still over."""
    used, start, role = 0, len(entries), None
    for index in range(len(entries) - 1, -1, -1):
        entry = entries[index]
        cost = counter.text(entry.text)
        if merge and entry.role == role:
            cost += counter.text(_JOINERS[entry.role])
        else:
            cost += _overhead(counter)
        if used + cost > budget:
            break
        used, start, role = used + cost, index, entry.role
    chosen = list(entries[start:])
    if merge:
        while chosen and _count(merged(chosen), counter) > budget:
            chosen.pop(0)
    return chosen


def _refresh_due(everything: Sequence[Entry], stored: StoredSummary, every: int) -> bool:
    """Whether ``every`` turns were committed since the summary was written: the distinct
    turns of the replies after it (a run of replies without a turn id counts as one). It
    may count fewer turns than there were, never more."""
    if stored.text is None or stored.as_of is None:
        return True
    turns: set[str] = set()
    anonymous, previous_kind = 0, None
    for entry in everything:
        if entry.order <= stored.as_of:
            continue
        if entry.kind == REPLY:
            if entry.turn is not None:
                turns.add(entry.turn)
            elif previous_kind != REPLY:
                anonymous += 1
        previous_kind = entry.kind
    return len(turns) + anonymous >= max(every, 1)
