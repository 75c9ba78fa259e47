"""Which configuration version a session's turn runs under, and moving it (DESIGN §17).

What it guarantees:

- a session moves to another version only as a turn starts, under its lease (the move is
  committed with the lease's fence), and only to the tenant's live version as the store
  has it: a move the store refuses (this process's view of the pointer is behind, or the
  session moved meanwhile) makes the pointer read again, and the turn goes on where the
  session is; every move is audited by the store (``session.repinned``);
- a move whose upcast would overwrite a state written since it was read is decided again
  (at most ``REPIN_TRIES`` times); one the state contract refuses leaves the session where
  it was;
- a session whose version cannot serve it moves to the live version (``unservable``);
  when that cannot serve it either, or a turn is under way, its turn fails as a pipeline
  error would (``Agents.unserved``): the fallback reply, never a driver crashing in a loop.
"""

import structlog

from acf.domain.config_versions import version_label
from acf.domain.errors import Conflict, StateContractError, VersionConflict
from acf.domain.ids import SessionId, TenantId
from acf.ports.lease import CheckFence
from acf.ports.session_store import PatchState, RepinSession, SessionRecord
from acf.service.agents import UNSERVABLE, Pinned, Repin
from acf.service.lease_keeper import LeaseKeeper
from acf.service.runtime_parts import RuntimeParts

log = structlog.get_logger("acf.runtime")

REPIN_TRIES = 3
"""Times a re-pin is decided again when the session's state was written meanwhile."""


class _StateChanged:
    """A re-pin's upcast was refused: the session's state was written since it was read."""


_STATE_CHANGED = _StateChanged()


class SessionRepin:
    """One session's pinned version: read, and moved under the lease the caller holds."""

    def __init__(self, parts: RuntimeParts, tenant: TenantId, session_id: SessionId) -> None:
        self._parts = parts
        self._tenant = tenant
        self._session_id = session_id

    async def repin(self, session: SessionRecord, keeper: LeaseKeeper) -> SessionRecord | None:
        """Move the session to the live version when its rules say so (``Agents.repin``:
        its version rolled back, or the live one applies ``next_turn``), fenced, with its
        state migrated when the live version declares an upcaster; audited by the store
        (``session.repinned``). Returns the session as it is now (None: it is gone)."""
        for _ in range(REPIN_TRIES):
            move = await self._parts.agents.repin(session)
            if move is None:
                return session
            moved = await self._move(session, keeper, move)
            if not isinstance(moved, _StateChanged):
                return moved
            current = await self._reread()  # written meanwhile (the API): decide again
            if current is None:
                return None
            session = current
        return session

    async def pinned(
        self, session: SessionRecord, keeper: LeaseKeeper, starting: bool
    ) -> tuple[SessionRecord, Pinned] | None:
        """The session's binding (``Agents.pinned``). When its version cannot serve it (its
        agent not in it, the version missing or unbuildable) and a turn starts, it moves to
        the live version (reason ``unservable``); when that cannot serve it either (or a
        turn is under way), the turn runs ``Agents.unserved``, which fails it as a pipeline
        error would: the customer gets the fallback reply, never a driver crashing in a loop.
        None: the session is gone."""
        p = self._parts
        try:
            return session, await p.agents.pinned(session)
        except UNSERVABLE as exc:
            error: Exception = exc
        move = p.agents.unservable(session) if starting else None
        if move is not None:
            log.warning(
                "session.unservable",
                tenant=self._tenant,
                session_id=self._session_id,
                config_version=_label(session.config_version),
                error=str(error),
            )
            moved = await self._move(session, keeper, move)
            if moved is None:
                return None
            if isinstance(moved, SessionRecord):
                session = moved
            try:
                return session, await p.agents.pinned(session)
            except UNSERVABLE as exc:
                error = exc
        log.error(
            "session.unserved",
            tenant=self._tenant,
            session_id=self._session_id,
            config_version=_label(session.config_version),
            error=str(error),
        )
        return session, p.agents.unserved(session, error)

    async def _move(
        self, session: SessionRecord, keeper: LeaseKeeper, move: Repin
    ) -> SessionRecord | _StateChanged | None:
        """Commit ``move`` (fenced); the session as it is now. The store moves it only to
        the tenant's live version now: refused (this process's view of the pointer is
        behind, or the session moved meanwhile), the pointer is read again and the turn
        goes on where the session is. ``_STATE_CHANGED``: the state was written since it
        was read (the upcast would overwrite that write): decide again."""
        p = self._parts
        now = p.clock.now_ms()
        migrates = move.state is not None
        op = RepinSession(
            self._tenant,
            self._session_id,
            move.from_number,
            move.to_number,
            move.reason,
            move.state,
            now,
            session.state_version if migrates else None,
        )
        try:
            await p.store.uow.commit(
                self._tenant, [CheckFence(self._session_id, keeper.fence, now), op]
            )
        except (Conflict, VersionConflict, StateContractError) as exc:
            # An upcast the state contract refuses leaves the session where it was.
            log.warning(
                "session.repin_refused",
                tenant=self._tenant,
                session_id=self._session_id,
                to=f"v{move.to_number}",
                reason=move.reason,
                error=str(exc),
            )
            if isinstance(exc, VersionConflict):
                return _STATE_CHANGED
            if isinstance(exc, StateContractError):
                return session
            await p.agents.refresh(self._tenant)  # the pointer as it is now
            return await self._reread()
        log.info(
            "session.repinned",
            tenant=self._tenant,
            session_id=self._session_id,
            to=f"v{move.to_number}",
            reason=move.reason,
            migrated=migrates,
        )
        return await self._reread()

    async def _reread(self) -> SessionRecord | None:
        return await self._parts.store.sessions.get(self._tenant, self._session_id)


def stamp_ops(session: SessionRecord, pinned: Pinned, at_ms: int) -> list[PatchState]:
    """The state patch recording the scenario version stamp, when the session is in a
    scenario whose stamp its state does not hold yet."""
    stamp = pinned.scenario_stamp
    if stamp is None:
        return []
    if session.state.get("scenario_version") == stamp:
        return []
    patch = {"scenario_version": dict(stamp)}
    return [PatchState(session.session_id, session.state_version, patch, at_ms)]


def _label(number: int | None) -> str:
    return "none" if number is None else version_label(number)
