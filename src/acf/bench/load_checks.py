"""The load test's invariants, checked at the end through acf's API (the way an operator
would), over every session the simulated customers opened:

- every accepted message lies in exactly one committed turn, and no turn failed or is
  still live once the sessions settled;
- every committed turn has exactly one reply (each part once: no duplicate), and none is
  lost: each part was sent, except a part cut because the customer wrote again before it
  went out (``reply.cut``), and never the session's last reply;
- each reply comes from the route the conversation asked for: the agent service's echo
  (``You said: …``) for a delegated conversation, its follow-ups included (sticky
  routing), the model's answer for a direct one (so no fallback, no degraded notice);
- the tenant's store holds exactly the messages the customers had accepted, no turn
  failed anywhere, and there is no dead letter.

``session_problems`` is pure (table-tested); ``check`` does the reading.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict

from acf.bench.load_script import Record, Route

AGENT_PREFIX = "You said: "
"""How the fake agent service's every answer starts."""
LIVE_PHASES = frozenset({"accumulating", "running"})
SENT_STATUSES = frozenset({"sent", "delivered", "read"})
PAGE = 1000


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


_B = TypeVar("_B", bound=_Body)


class ReplyBody(_Body):
    outbox_id: int
    turn_id: str
    position: int
    text: str
    status: str


class SessionBody(_Body):
    session_id: str
    last_seq: int
    consumed_seq: int
    replies: list[ReplyBody]


class TurnBody(_Body):
    turn_id: str
    phase: str
    from_seq: int
    to_seq: int


class TurnList(_Body):
    items: list[TurnBody]


class EventBody(_Body):
    event_id: int
    kind: str
    data: dict[str, Any]


class EventList(_Body):
    items: list[EventBody]


class ItemList(_Body):
    items: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One session as the API shows it."""

    session: SessionBody
    turns: list[TurnBody]

    @property
    def settled(self) -> bool:
        s = self.session
        return (
            s.consumed_seq == s.last_seq
            and not any(t.phase in LIVE_PHASES for t in self.turns)
            and not any(r.status == "pending" for r in s.replies)
        )


@dataclass(slots=True)
class Invariants:
    """What the checks found; ``held`` when nothing."""

    sessions: int = 0
    turns: Counter[str] = field(default_factory=Counter)
    """Turns per phase, over every session."""
    replies: int = 0
    cut_parts: int = 0
    sticky_turns: int = 0
    """Committed turns of delegated conversations after their first: their messages carry
    no command, the router kept them on the agent's route (each was answered by it)."""
    messages_in_store: int = 0
    messages_accepted: int = 0
    failed_turn_events: int = 0
    attempt_failed_events: int = 0
    """Retried attempts (``turn.attempt_failed``): allowed, reported."""
    dead_letters: int = 0
    unsettled: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class Customer:
    """What a session's customer knows of it."""

    route: Route
    accepted: int
    """Messages answered 202."""
    sent: int
    """Messages the session may hold: ``accepted``, or for a conversation Locust
    interrupted at the end of the run, every message it may have posted."""


def session_problems(snap: Snapshot, customer: Customer, direct_answer: str) -> list[str]:
    """The invariants of one session, given what its customer knows of it."""
    s, sid = snap.session, snap.session.session_id
    problems: list[str] = []
    if not customer.accepted <= s.last_seq <= customer.sent:
        problems.append(f"{sid}: {customer.accepted} messages were accepted, it holds {s.last_seq}")
    committed = sorted((t for t in snap.turns if t.phase == "committed"), key=lambda t: t.to_seq)
    owners = Counter(seq for t in committed for seq in range(t.from_seq + 1, t.to_seq + 1))
    problems += [
        f"{sid}: message {seq} is in {owners[seq]} committed turns"
        for seq in range(1, s.last_seq + 1)
        if owners[seq] != 1
    ]
    problems += [f"{sid}: turn {t.turn_id} {t.phase}" for t in snap.turns if t.phase == "failed"]
    if not snap.settled:
        problems.append(f"{sid}: not settled (consumed {s.consumed_seq} of {s.last_seq})")
    by_turn: dict[str, list[ReplyBody]] = {}
    for r in sorted(s.replies, key=lambda r: r.position):
        by_turn.setdefault(r.turn_id, []).append(r)
    committed_ids = [t.turn_id for t in committed]
    problems += [
        f"{sid}: a reply of turn {turn_id}, which did not commit"
        for turn_id in by_turn
        if turn_id not in committed_ids
    ]
    for turn_id in committed_ids:
        rows = by_turn.get(turn_id, [])
        problems += _reply_problems(sid, turn_id, rows, last=turn_id == committed_ids[-1])
        parts: dict[int, str] = {}
        for r in rows:  # by position; a duplicate part is reported above, read once here
            parts.setdefault(r.position, r.text)
        text = "".join(parts.values())
        if rows and not _from_route(text, customer.route, direct_answer):
            problems.append(f"{sid}: turn {turn_id} ({customer.route}) was answered {text[:60]!r}")
    return problems


def _reply_problems(sid: str, turn_id: str, rows: Sequence[ReplyBody], last: bool) -> list[str]:
    if not rows:
        return [f"{sid}: turn {turn_id} committed without a reply (lost)"]
    problems = []
    positions = Counter(r.position for r in rows)
    problems += [
        f"{sid}: turn {turn_id} has part {p} {n} times (duplicate)"
        for p, n in positions.items()
        if n > 1
    ]
    for r in rows:
        cut_allowed = r.status == "cut" and not last
        if r.status not in SENT_STATUSES and not cut_allowed:
            problems.append(f"{sid}: reply {r.outbox_id} of turn {turn_id} is {r.status}")
    return problems


def _from_route(text: str, route: Route, direct_answer: str) -> bool:
    if route is Route.AGENT:
        return text.startswith(AGENT_PREFIX)
    return text == direct_answer


async def check(
    http: httpx.AsyncClient,
    records: Sequence[Record],
    direct_answer: str,
    *,
    settle_s: float = 30.0,
    concurrency: int = 8,
) -> Invariants:
    """Read every session of ``records`` (again, until each settled or ``settle_s``
    passed), then the tenant-wide figures, and check them all."""
    found = Invariants()
    sessions: dict[str, Customer] = {}
    for r in records:
        if r.session_id is not None:
            sent = r.planned if r.interrupted else r.accepted
            sessions[r.session_id] = Customer(r.route, r.accepted, sent)
    found.sessions = len(sessions)
    found.messages_accepted = sum(c.accepted for c in sessions.values())
    most = sum(c.sent for c in sessions.values())
    snaps = await _settled(http, list(sessions), settle_s, concurrency)
    for sid, snap in snaps.items():
        found.problems += session_problems(snap, sessions[sid], direct_answer)
        found.unsettled += not snap.settled
        found.turns.update(t.phase for t in snap.turns)
        if sessions[sid].route is Route.AGENT:
            found.sticky_turns += max(0, sum(t.phase == "committed" for t in snap.turns) - 1)
        found.replies += len(snap.session.replies)
        found.cut_parts += sum(r.status == "cut" for r in snap.session.replies)
    found.messages_in_store = len(await _events(http, "message.received"))
    found.failed_turn_events = len(await _events(http, "turn.failed"))
    found.attempt_failed_events = len(await _events(http, "turn.attempt_failed"))
    letters = await _get(http, "/v1/dead-letters", {"limit": PAGE}, ItemList)
    found.dead_letters = len(letters.items)
    if not found.messages_accepted <= found.messages_in_store <= most:
        found.problems.append(
            f"the store holds {found.messages_in_store} messages, "
            f"the customers had {found.messages_accepted} accepted"
        )
    if found.failed_turn_events:
        found.problems.append(f"{found.failed_turn_events} turn.failed events")
    if found.dead_letters:
        found.problems.append(f"{found.dead_letters} dead letters")
    return found


async def _settled(
    http: httpx.AsyncClient, ids: Sequence[str], settle_s: float, concurrency: int
) -> dict[str, Snapshot]:
    gate = asyncio.Semaphore(concurrency)
    deadline = time.monotonic() + settle_s

    async def one(sid: str) -> Snapshot:
        async with gate:
            session = await _get(http, f"/v1/sessions/{sid}", {}, SessionBody)
            turns = await _get(http, f"/v1/sessions/{sid}/turns", {"limit": PAGE}, TurnList)
        return Snapshot(session, turns.items)

    snaps: dict[str, Snapshot] = {}
    pending = list(ids)
    while True:
        read = await asyncio.gather(*(one(sid) for sid in pending))
        snaps.update((s.session.session_id, s) for s in read)
        pending = [s.session.session_id for s in read if not s.settled]
        if not pending or time.monotonic() > deadline:
            return snaps
        await asyncio.sleep(1.0)


async def _events(http: httpx.AsyncClient, kind: str) -> list[EventBody]:
    """Every event of ``kind`` of the tenant, page after page."""
    found: list[EventBody] = []
    while True:
        after = found[-1].event_id if found else 0
        params = {"kind": kind, "after_id": after, "limit": PAGE}
        page = await _get(http, "/v1/events", params, EventList)
        found += page.items
        if len(page.items) < PAGE:
            return found


async def _get(http: httpx.AsyncClient, url: str, params: dict[str, Any], model: type[_B]) -> _B:
    response = await http.get(url, params=params)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.text[:200]}")
    return model.model_validate_json(response.content)
