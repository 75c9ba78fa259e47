"""The operator's desk: what a person does with a session handed off to people.

Hand a session off, claim it (one operator at a time, for the tenant's ``claim_ttl_ms``
unless asked otherwise), reply, write internal notes, release the claim, hand the session
back to the agent. Each write is one unit of the store, audited with who did it, and wakes
the session (its driver delivers the reply, or runs the agent again after a resume).

A reply takes the session lease (holder ``operator:<key_id>``), so it never interleaves
with a turn: it waits up to ``LEASE_WAIT_MS`` of the clock for the session's driver to let
the lease go (``Conflict("session_busy")`` after that), commits a HUMAN turn
(``handoff_units``) and lets the lease go at once.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from acf.domain.config_versions import version_label
from acf.domain.errors import AcfError, Conflict, InvalidValue
from acf.domain.events import EventKind
from acf.domain.handoff import PeoplePolicies
from acf.domain.ids import SessionId, TenantId, new_id, new_trace_id
from acf.domain.tools import LedgerStatus
from acf.domain.turns import Turn
from acf.ports.claims import SessionClaim
from acf.ports.clock import Clock
from acf.ports.event_store import EventQuery
from acf.ports.handoffs import (
    AddNote,
    ClaimHandoff,
    EnterHuman,
    Handoff,
    HandoffSource,
    InboxEntry,
    InboxState,
    Note,
    Operator,
    ReleaseClaim,
    ResumeAgent,
)
from acf.ports.ledger import LedgerQuery
from acf.ports.session_store import SessionRecord
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp
from acf.service.handoff_units import (
    LiveTurn,
    answered_through,
    human_reply,
    reply_payload,
)
from acf.service.turn_progress_units import Versions

Wake = Callable[[TenantId, SessionId], Awaitable[None]]

LEASE_WAIT_MS = 3_000
"""How long a reply waits for the session lease (a turn standing down, a delivery)."""
LEASE_RETRY_S = 0.05
LEASE_TTL_MS = 15_000
"""The reply's lease: long enough for its one commit; released right after it."""
MAX_NOTE = 10_000
MAX_REASON = 500

# A guard of the reply's unit that another writer tripped meanwhile: the session was busy.
_BUSY = frozenset({"fence", "consumed_seq", "new_messages", "range", "turn", "group"})


class NoSuchSession(AcfError):
    """The tenant has no session with this id (another tenant's is just as unknown)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r}")
        self.session_id = session_id


@dataclass(frozen=True, slots=True)
class OperatorReply:
    turn_id: str
    outbox_ids: tuple[int, ...]
    answered_through_seq: int
    """The last message the reply answered (consumed)."""


def _text(value: str | None, field: str, limit: int) -> str | None:
    """``value`` stripped, None when blank; ``InvalidValue`` when longer than ``limit``."""
    if value is None or not value.strip():
        return None
    if len(value) > limit:
        raise InvalidValue(f"{field}: at most {limit} characters")
    return value.strip()


class OperatorDesk:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        wake: Wake,
        people: PeoplePolicies,
        holder_prefix: str = "operator",
    ) -> None:
        self._store = store
        self._clock = clock
        self._wake = wake
        self._people = people
        self._holder_prefix = holder_prefix

    async def _session(self, tenant: TenantId, session_id: SessionId) -> SessionRecord:
        session = await self._store.sessions.get(tenant, session_id)
        if session is None:
            raise NoSuchSession(session_id)
        return session

    async def handoff(
        self,
        tenant: TenantId,
        session_id: SessionId,
        reason: str,
        by: Operator,
        *,
        trace_id: str | None = None,
    ) -> Handoff:
        """Put the session in human mode (the customer gets the tenant's notice once);
        idempotent: a session already handed off returns its open handoff. ``Conflict``
        ``"closed"`` or ``"blocked"``."""
        await self._session(tenant, session_id)
        why = _text(reason, "reason", MAX_REASON) or "operator"
        op = EnterHuman(
            tenant,
            session_id,
            why,
            HandoffSource.OPERATOR,
            self._clock.now_ms(),
            trace_id or new_trace_id(),
            by=by,
            notice=self._people(tenant).handoff.notice,
        )
        opened = (await self._store.uow.commit(tenant, [op])).get(op)
        await self._wake(tenant, session_id)
        if opened is not None:
            return opened
        current = await self._store.handoffs.current(tenant, session_id)
        if current is None:  # resumed between the two reads
            raise Conflict("not_human")
        return current

    async def claim(
        self,
        tenant: TenantId,
        session_id: SessionId,
        by: Operator,
        ttl_ms: int | None = None,
        *,
        trace_id: str | None = None,
    ) -> Handoff:
        """Claim (or renew) the session's open handoff for ``ttl_ms`` (the tenant's
        ``claim_ttl_ms`` by default). ``Conflict`` ``"claimed"`` or ``"not_human"``."""
        await self._session(tenant, session_id)
        ttl = self._people(tenant).handoff.claim_ttl_ms if ttl_ms is None else ttl_ms
        if ttl <= 0:
            raise InvalidValue("ttl: must be positive")
        op = ClaimHandoff(
            tenant, session_id, by, ttl, self._clock.now_ms(), trace_id or new_trace_id()
        )
        claimed = (await self._store.uow.commit(tenant, [op])).get(op)
        await self._wake(tenant, session_id)
        return claimed

    async def reply(
        self,
        tenant: TenantId,
        session_id: SessionId,
        by: Operator,
        text: str,
        buttons: Sequence[str] | None = None,
        answers_through_seq: int | None = None,
        *,
        trace_id: str | None = None,
        guards: Sequence[WriteOp[Any]] = (),
    ) -> OperatorReply:
        """Answer the customer as ``by``, who holds the claim: a HUMAN turn consuming the
        messages through ``answers_through_seq`` (the newest by default). ``Conflict``
        ``"not_claimed"``, ``"not_human"`` or ``"session_busy"``; ``InvalidValue``.
        ``guards`` ride first in the reply's unit (the route's idempotency reservation):
        their refusal commits nothing and is raised as it is."""
        payload = reply_payload(text, buttons, by)
        await self._session(tenant, session_id)
        handoff = await self._store.handoffs.current(tenant, session_id)
        if handoff is None:
            raise Conflict("not_human")
        if handoff.claimed_at(self._clock.now_ms()) != by.key_id:
            raise Conflict("not_claimed")  # said before waiting for the lease
        claim = await self._take_lease(tenant, session_id, by)
        try:
            result = await self._commit_reply(
                claim,
                handoff,
                by,
                payload,
                answers_through_seq,
                trace_id or new_trace_id(),
                guards,
            )
        finally:
            await self._store.lease.release(claim.lease)
            # Also after a refusal: a driver woken while this lease was held found it taken
            # and waits for its expiry; the session is free now.
            await self._wake(tenant, session_id)
        return result

    async def _take_lease(
        self, tenant: TenantId, session_id: SessionId, by: Operator
    ) -> SessionClaim:
        holder = f"{self._holder_prefix}:{by.key_id}"
        deadline = self._clock.now_ms() + LEASE_WAIT_MS
        while True:
            claim = await self._store.claims.claim_session(tenant, session_id, holder, LEASE_TTL_MS)
            if claim is not None:
                return claim
            if self._clock.now_ms() >= deadline:
                raise Conflict("session_busy")
            await self._clock.sleep(LEASE_RETRY_S)

    async def _commit_reply(
        self,
        claim: SessionClaim,
        handoff: Handoff,
        by: Operator,
        payload: dict[str, Any],
        answers_through_seq: int | None,
        trace_id: str,
        guards: Sequence[WriteOp[Any]],
    ) -> OperatorReply:
        session = claim.session
        if session is None:
            raise NoSuchSession(claim.lease.session_id)
        tenant = session.tenant
        live = None
        if claim.live is not None:
            # Calls of its group left ``started`` (its driver was cut off mid-call) are
            # settled with it, as the driver settles them.
            entries = await self._store.ledger.query(
                tenant, LedgerQuery(group_id=claim.live.group_id)
            )
            live = LiveTurn(
                claim.live,
                await self._versions_of(claim.live, session),
                [e for e in entries if e.status is LedgerStatus.STARTED],
            )
        now = self._clock.now_ms()
        unit = human_reply(
            session=session,
            fence=claim.lease.fence,
            by=by,
            handoff_id=handoff.handoff_id,
            payload=payload,
            to_seq=answered_through(session, answers_through_seq),
            turn_id=new_id(),
            group_id=new_id(),
            trace_id=trace_id,
            at_ms=now,
            claim_until_ms=now + self._people(tenant).handoff.claim_ttl_ms,
            live=live,
        )
        try:
            results = await self._store.uow.commit(tenant, [*guards, *unit.ops])
        except Conflict as conflict:
            if conflict.reason == "mode":
                raise Conflict("not_human") from None
            if conflict.reason in _BUSY:
                raise Conflict("session_busy") from None
            raise
        outbox_id = results.get(unit.enqueue)
        return OperatorReply(unit.turn.turn_id, (outbox_id,), unit.turn.to_seq)

    async def _versions_of(self, turn: Turn, session: SessionRecord) -> Versions:
        """The versions a live agent turn ran under, as its window's opening recorded them
        (its stand-down's record and events carry them)."""
        events = await self._store.events.query(
            session.tenant,
            EventQuery(
                session_id=session.session_id,
                kinds=(EventKind.WINDOW_OPENED,),
                from_ms=turn.created_at_ms,
                to_ms=turn.created_at_ms + 1,
                in_commit_order=False,
            ),
        )
        for event in events:
            c = event.correlation
            if c.turn_id == turn.turn_id and c.agent_version and c.config_version:
                return Versions(c.agent_version, c.config_version)
        pinned = session.config_version
        return Versions("unknown", "none" if pinned is None else version_label(pinned))

    async def add_note(
        self,
        tenant: TenantId,
        session_id: SessionId,
        by: Operator,
        text: str,
        *,
        trace_id: str | None = None,
    ) -> Note:
        """An internal note on the session (never sent to the customer)."""
        body = _text(text, "text", MAX_NOTE)
        if body is None:
            raise InvalidValue("text: a note needs text")
        await self._session(tenant, session_id)
        op = AddNote(
            tenant, session_id, new_id(), by, body, self._clock.now_ms(), trace_id or new_trace_id()
        )
        note = (await self._store.uow.commit(tenant, [op])).get(op)
        await self._wake(tenant, session_id)
        return note

    async def notes(self, tenant: TenantId, session_id: SessionId) -> list[Note]:
        await self._session(tenant, session_id)
        return await self._store.handoffs.notes(tenant, session_id)

    async def release(
        self,
        tenant: TenantId,
        session_id: SessionId,
        by: Operator,
        note: str | None = None,
        *,
        trace_id: str | None = None,
    ) -> None:
        """Give up ``by``'s claim (the session stays with people, back among the waiting);
        ``note`` becomes an internal note. ``Conflict("not_claimed")``."""
        body = _text(note, "note", MAX_NOTE)
        await self._session(tenant, session_id)
        op = ReleaseClaim(
            tenant, session_id, by, body, self._clock.now_ms(), trace_id or new_trace_id()
        )
        await self._store.uow.commit(tenant, [op])
        await self._wake(tenant, session_id)

    async def resume(
        self,
        tenant: TenantId,
        session_id: SessionId,
        by: Operator,
        note: str | None = None,
        *,
        trace_id: str | None = None,
    ) -> None:
        """Hand the session back to the agent, with ``note`` for it (``meta.handover``);
        its driver answers what came after the operators' replies. ``Conflict``
        ``"not_human"`` or ``"claimed"`` (another operator holds it)."""
        body = _text(note, "note", MAX_NOTE)
        await self._session(tenant, session_id)
        op = ResumeAgent(
            tenant, session_id, by, body, self._clock.now_ms(), trace_id or new_trace_id()
        )
        await self._store.uow.commit(tenant, [op])
        await self._wake(tenant, session_id)

    async def inbox(
        self, tenant: TenantId, state: InboxState = InboxState.OPEN, limit: int = 100
    ) -> list[InboxEntry]:
        return await self._store.handoffs.inbox(tenant, state, self._clock.now_ms(), limit)
