"""The timeline of ``acf demo``: the store's events of an act as short, readable rows."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from acf.domain.events import EventKind, FabricEvent
from acf.domain.messages import InboundMessage
from acf.ports.ledger import LedgerEntry

CRASHED = "process.crashed"
"""The timeline's own row for a crash (the dying process writes no event)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One line of an act's timeline."""

    at_ms: int
    kind: str
    detail: str

    @property
    def category(self) -> str:
        return category(self.kind)

    def as_json(self) -> dict[str, Any]:
        row = {"at_ms": self.at_ms, "kind": self.kind, "category": self.category}
        return row | {"detail": self.detail}


_FAILURES = {
    EventKind.TURN_ATTEMPT_FAILED,
    EventKind.TURN_FAILED,
    EventKind.TOOL_REFUSED,
    EventKind.TOOL_EXECUTION_FAILED,
    EventKind.TOOL_IN_DOUBT,
    EventKind.RESPONSE_FAILED,
    EventKind.LEASE_LOST,
    EventKind.SESSION_FLAGGED,
}
_SUPERSEDES = {EventKind.TURN_SUPERSEDED, EventKind.TURN_ABSORBED}


def category(kind: str) -> str:
    """The colour group of an event kind: message, window, turn, supersede, tool,
    confirmation, delivery or failure."""
    if kind == CRASHED or kind in _FAILURES:
        return "failure"
    if kind in _SUPERSEDES:
        return "supersede"
    prefix = kind.split(".", 1)[0]
    return {
        "message": "message",
        "typing": "message",
        "window": "window",
        "turn": "turn",
        "tool": "tool",
        "confirmation": "confirmation",
        "response": "delivery",
    }.get(prefix, "turn")


def clip(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _seqs(data: Any) -> str:
    low, high = int(data.get("from_seq", 0)) + 1, int(data.get("to_seq", 0))
    return f"#{low}" if low == high else f"#{low}-{high}"


@dataclass(slots=True)
class Describer:
    """A short detail for each event kind of one session, with its message texts, tool
    arguments and button titles."""

    start_ms: int
    texts: dict[str, str]
    args: dict[str, str]

    @classmethod
    def of(
        cls,
        start_ms: int,
        messages: Sequence[InboundMessage],
        entries: Sequence[LedgerEntry],
        events: Sequence[FabricEvent],
    ) -> "Describer":
        titles: dict[str, str] = {}
        for event in events:
            for button in event.data.get("buttons", ()) or ():
                titles[str(button["id"])] = str(button["title"])
        texts = {}
        for m in messages:
            if m.button is not None:
                texts[m.message_id] = f"[{titles.get(m.button.button_id, m.button.button_id)}]"
            else:
                texts[m.message_id] = f'"{clip(m.text or "")}"'
        args = {
            e.execution_id: ", ".join(f"{k}={v}" for k, v in sorted(e.args.items()))
            for e in entries
        }
        return cls(start_ms, texts, args)

    def __call__(self, event: FabricEvent) -> str:
        d = event.data
        kind = event.kind
        if kind in (EventKind.MESSAGE_RECEIVED, EventKind.MESSAGE_DUPLICATE):
            text = self.texts.get(str(d.get("message_id")), "")
            if kind is EventKind.MESSAGE_DUPLICATE:
                pid = d.get("provider_message_id")
                return f"#{d.get('seq')} again (provider id {pid}): not stored"
            return f"#{d.get('seq')} {text}"
        if kind in (EventKind.WINDOW_OPENED, EventKind.WINDOW_EXTENDED):
            close = int(d.get("close_at_ms", self.start_ms)) - self.start_ms
            return f"closes at +{close} ms ({d.get('reason')})"
        if kind is EventKind.WINDOW_CLOSED:
            return f"{_seqs(d)} after {d.get('waited_ms')} ms ({d.get('reason')})"
        if kind is EventKind.TURN_STARTED:
            why = f", {d['reason']}" if d.get("reason") else ""
            return f"{_seqs(d)}, attempt {d.get('attempt')}{why}"
        if kind is EventKind.TURN_SUPERSEDED:
            return (
                f"{_seqs(d)}: #{d.get('last_seq')} arrived after {d.get('run_ms')} ms of work; "
                "its reply is discarded"
            )
        if kind is EventKind.TURN_COMMITTED:
            replies = int(d.get("replies", 0))
            return (
                f"{_seqs(d)}, attempt {d.get('attempt')}: {replies} "
                f"{'reply' if replies == 1 else 'replies'}, latency {d.get('latency_ms')} ms"
            )
        if kind is EventKind.TURN_IRREVERSIBLE_STARTED:
            return "the irreversible gate is passed (no unseen messages)"
        if kind.value.startswith("tool."):
            return self._tool(event)
        if kind is EventKind.CONFIRMATION_REQUESTED:
            minutes = (int(d.get("expires_at_ms", event.at_ms)) - event.at_ms) // 60_000
            return f"{d.get('tool')}: asks first, expires in {minutes} min"
        if kind in (EventKind.CONFIRMATION_RESOLVED, EventKind.CONFIRMATION_EXPIRED):
            return f"{d.get('tool')}: answer {d.get('answer')}, outcome {d.get('outcome')}"
        if kind is EventKind.RESPONSE_QUEUED:
            return f"in the outbox (segment {d.get('position')})"
        if kind is EventKind.RESPONSE_DELIVERED:
            buttons = " ".join(f"[{b['title']}]" for b in d.get("buttons", ()) or ())
            return f'"{clip(str(d.get("text", "")))}"' + (f" {buttons}" if buttons else "")
        if kind in (EventKind.RESPONSE_FAILED, EventKind.TURN_FAILED):
            return clip(str(d.get("error", "")))
        if kind is EventKind.TURN_ATTEMPT_FAILED:
            return f"attempt {d.get('attempt')}: {clip(str(d.get('error', '')))}"
        return clip(", ".join(f"{k}={v}" for k, v in d.items()))

    def _tool(self, event: FabricEvent) -> str:
        d = event.data
        args = self.args.get(str(d.get("execution_id")))
        call = f"{d.get('tool')}({args or ''})"
        if event.kind is EventKind.TOOL_EXECUTION_STARTED:
            if args is None:  # no row of its own: the key's earlier started row runs again
                return f"{d.get('tool')} {d.get('policy')}: again, on the key's earlier row"
            return f"{call} {d.get('policy')}"
        if event.kind is EventKind.TOOL_EXECUTION_COMPLETED:
            return f"{call} ok"
        if event.kind is EventKind.TOOL_SIDE_EFFECT_COMPLETED:
            return f"{call}: the side effect is done and recorded"
        if event.kind is EventKind.TOOL_EXECUTION_FAILED:
            return f"{call} failed: {clip(str(d.get('error', '')))}"
        return f"{call} {clip(', '.join(f'{k}={v}' for k, v in d.items() if k != 'tool'))}"
