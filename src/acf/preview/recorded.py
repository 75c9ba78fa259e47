"""What happened: a session's messages, replies, tool calls and outcome categories, read
through the store's ports (the tenant's real store, or a preview's sandbox).

Replies are the session's outbox rows in commit order, fallback copies left out (the same
reply on another channel); tool calls are its ledger rows (name and arguments), in the
order they started; outcome categories are those of its committed and failed turns'
records, in turn order (a failed turn without categories counts as ``FAILED``).
"""

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from acf.domain.errors import AcfError
from acf.domain.ids import SessionId, TenantId
from acf.domain.messages import InboundMessage
from acf.domain.turns import Turn, TurnPhase
from acf.ports.ledger import LedgerEntry, LedgerQuery
from acf.ports.session_store import SessionFilter, SessionRecord
from acf.ports.store import Store
from acf.preview.diff import SessionView, ToolCallView

ALL = 1_000_000
"""Every row of one session (a bound a session never reaches)."""


class PreviewError(AcfError):
    """The preview cannot run as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class RecordedSession:
    record: SessionRecord
    messages: tuple[InboundMessage, ...]
    view: SessionView
    groups: tuple[str, ...]
    """Its turn groups: where its model completions are memoised."""
    ledger: tuple[LedgerEntry, ...]


async def choose(
    store: Store, tenant: TenantId, session_id: str | None, count: int | None
) -> list[SessionRecord]:
    """``session_id``'s session, or the ``count`` sessions of the tenant with the newest
    activity that hold messages and have none waiting for a turn (a session still being
    answered would be compared half done). Oldest first."""
    if session_id is not None:
        found = await store.sessions.get(tenant, SessionId(session_id))
        if found is None:
            raise PreviewError(f"tenant {tenant} has no session {session_id}")
        return [found]
    assert count is not None
    listed = await store.sessions.list_sessions(tenant, SessionFilter(limit=count * 2 + 50))
    done = [s for s in listed if s.last_seq > 0 and not s.has_unconsumed][:count]
    if not done:
        raise PreviewError(f"tenant {tenant} has no recorded session with messages")
    return sorted(done, key=lambda s: (s.created_at_ms, s.session_id))


async def read(store: Store, tenant: TenantId, record: SessionRecord) -> RecordedSession:
    sid = record.session_id
    messages = await store.messages.read_range(tenant, sid, 0, record.last_seq)
    turns = await store.turns.list_turns(tenant, sid)
    ledger = await store.ledger.query(tenant, LedgerQuery(session_id=sid, limit=ALL))
    return RecordedSession(
        record=record,
        messages=tuple(messages),
        view=await view_of(store, tenant, [sid]),
        groups=tuple(dict.fromkeys(t.group_id for t in turns)),
        ledger=tuple(ledger),
    )


async def view_of(
    store: Store,
    tenant: TenantId,
    session_ids: Sequence[SessionId],
    owns: Callable[[Turn], bool] | None = None,
    sandboxed: Collection[str] = (),
) -> SessionView:
    """What the turns of ``session_ids`` that ``owns`` accepts did (every turn without it);
    ledger rows whose execution id is in ``sandboxed`` are flagged."""
    replies: list[str] = []
    calls: list[ToolCallView] = []
    outcomes: list[str] = []
    for sid in session_ids:
        turns = [t for t in await store.turns.list_turns(tenant, sid) if owns is None or owns(t)]
        ids = {t.turn_id for t in turns}
        for row in await store.outbox.for_session(tenant, sid):
            if row.fallback_of is None and row.turn_id in ids:
                replies.append(str(row.payload.get("text", "")))
        for entry in await store.ledger.query(tenant, LedgerQuery(session_id=sid, limit=ALL)):
            if entry.turn_id in ids:
                calls.append(ToolCallView(entry.tool, entry.args, entry.execution_id in sandboxed))
        for turn in turns:
            if turn.phase not in (TurnPhase.COMMITTED, TurnPhase.FAILED):
                continue
            record = await store.turns.get_record(tenant, turn.turn_id)
            found = [] if record is None else list(record.details.get("outcomes") or ())
            if not found and turn.phase is TurnPhase.FAILED:
                found = ["FAILED"]
            outcomes += [str(o) for o in found]
    return SessionView(tuple(replies), tuple(calls), tuple(outcomes))
