"""What changed between a recorded session and its replay (pure, table-tested).

A session is seen as three sequences: its replies (text, in commit order), its tool calls
(name and arguments, in ledger order) and its turns' outcome categories. Each sequence is
aligned with ``difflib`` so an inserted reply shows as one insertion, not as every later
reply changed.
"""

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    REPLIES = "replies"
    TOOL_CALLS = "tool_calls"
    OUTCOMES = "outcomes"


@dataclass(frozen=True, slots=True)
class ToolCallView:
    tool: str
    args: Mapping[str, Any]
    sandbox: bool = False
    """Served a sandbox result: no recorded result had these arguments."""

    @property
    def key(self) -> str:
        """Name and arguments as canonical JSON: what two calls are compared on."""
        return json.dumps([self.tool, self.args], sort_keys=True, separators=(",", ":"))

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"tool": self.tool, "args": dict(self.args)}
        if self.sandbox:
            body["sandbox"] = True
        return body


@dataclass(frozen=True, slots=True)
class SessionView:
    """What one session did: the part of it a preview compares."""

    replies: tuple[str, ...] = ()
    tool_calls: tuple[ToolCallView, ...] = ()
    outcomes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    kind: Kind
    position: int
    """Where in the recorded sequence (for an insertion: before which recorded item)."""
    before: Any
    """The recorded item, None for an insertion."""
    after: Any
    """The replayed item, None for a removal."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "position": self.position,
            "before": _plain(self.before),
            "after": _plain(self.after),
        }


@dataclass(frozen=True, slots=True)
class SessionDiff:
    session_id: str
    agent: str
    customer: str
    channel: str
    messages: int
    changes: tuple[Change, ...] = ()
    sandbox_calls: int = 0
    """Tool calls of the replay that got a sandbox result (no recorded one)."""
    problems: tuple[str, ...] = ()
    """Why the replay of this session could not be compared as a whole."""

    def changed(self, kind: Kind | None = None) -> bool:
        return any(kind is None or c.kind is kind for c in self.changes) or (
            kind is None and bool(self.problems)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "agent": self.agent,
            "customer": self.customer,
            "channel": self.channel,
            "messages": self.messages,
            "changed": self.changed(),
            "changes": [c.to_json() for c in self.changes],
            "sandbox_calls": self.sandbox_calls,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, slots=True)
class Summary:
    sessions: int
    changed: int
    unchanged: int
    sessions_changed_by_kind: Mapping[Kind, int] = field(default_factory=dict)
    changes_by_kind: Mapping[Kind, int] = field(default_factory=dict)
    sandbox_calls: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "sessions_changed": {k.value: v for k, v in self.sessions_changed_by_kind.items()},
            "changes": {k.value: v for k, v in self.changes_by_kind.items()},
            "sandbox_calls": self.sandbox_calls,
        }


def diff_items(kind: Kind, before: Sequence[Any], after: Sequence[Any]) -> list[Change]:
    """The changes that turn ``before`` into ``after``, aligned on equal items."""
    keys_before, keys_after = [_key(x) for x in before], [_key(x) for x in after]
    matcher = difflib.SequenceMatcher(a=keys_before, b=keys_after, autojunk=False)
    changes: list[Change] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        olds, news = list(before[i1:i2]), list(after[j1:j2])
        for n in range(max(len(olds), len(news))):
            old = olds[n] if n < len(olds) else None
            new = news[n] if n < len(news) else None
            changes.append(Change(kind, i1 + min(n, len(olds)), old, new))
    return changes


def diff_views(recorded: SessionView, replayed: SessionView) -> list[Change]:
    return [
        *diff_items(Kind.REPLIES, recorded.replies, replayed.replies),
        *diff_items(Kind.TOOL_CALLS, recorded.tool_calls, replayed.tool_calls),
        *diff_items(Kind.OUTCOMES, recorded.outcomes, replayed.outcomes),
    ]


def summarise(diffs: Iterable[SessionDiff]) -> Summary:
    listed = list(diffs)
    changed = sum(d.changed() for d in listed)
    by_session = {k: sum(d.changed(k) for d in listed) for k in Kind}
    by_change = {k: sum(c.kind is k for d in listed for c in d.changes) for k in Kind}
    return Summary(
        sessions=len(listed),
        changed=changed,
        unchanged=len(listed) - changed,
        sessions_changed_by_kind=by_session,
        changes_by_kind=by_change,
        sandbox_calls=sum(d.sandbox_calls for d in listed),
    )


def gate_fails(summary: Summary, kinds: Iterable[Kind]) -> list[Kind]:
    """The kinds of ``kinds`` in which at least one session changed (``--fail-on-change``)."""
    return [k for k in kinds if summary.sessions_changed_by_kind.get(k, 0) > 0]


def _key(item: Any) -> str:
    if isinstance(item, ToolCallView):
        return item.key  # the sandbox flag says where a result came from, not what was asked
    return json.dumps(item, sort_keys=True, default=str)


def _plain(item: Any) -> Any:
    return item.to_json() if isinstance(item, ToolCallView) else item
