"""Session store: one row per conversation, holding sequence marks and versioned state."""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from acf.domain.ids import SessionId, TenantId
from acf.domain.modes import SessionMode
from acf.domain.session_key import SessionKey
from acf.ports.unit_of_work import WriteOp


class SessionStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session_id: SessionId
    key: SessionKey
    status: SessionStatus
    last_seq: int
    consumed_seq: int
    state: Mapping[str, Any]
    state_version: int
    flagged: bool
    flag_reason: str | None
    created_at_ms: int
    updated_at_ms: int
    pending_trace_id: str | None = None
    """The trace id of the oldest unconsumed message (the request that started the next
    turn), so the turn's events and log lines carry the caller's trace."""
    config_version: int | None = None
    """The configuration version the session is pinned to (fixed when it opens, from the
    tenant's pointer in the same transaction; None when the tenant had no live version)."""
    canary: bool = False
    """The session was assigned the canary version (its arm is sticky)."""
    closed_at_ms: int | None = None
    mode: SessionMode = SessionMode.AGENT
    """Who answers (``acf.domain.modes``); part of every agent turn's commit guard."""
    mode_reason: str | None = None
    mode_since_ms: int | None = None
    mode_until_ms: int | None = None
    """When a cool-down ends (None in other modes)."""
    fallbacks: int = 0
    """Fallback answers given in this session (the tenant's handoff rule counts them)."""

    @property
    def tenant(self) -> TenantId:
        return self.key.tenant

    @property
    def has_unconsumed(self) -> bool:
        return self.last_seq > self.consumed_seq


@dataclass(frozen=True, slots=True)
class PatchState(WriteOp[int]):
    """Merge-patch the session state if its version is still ``expected_version``.

    Returns the new version (``expected_version + 1``). Raises ``VersionConflict`` when
    another writer got there first, ``StateContractError`` when the result is invalid.
    """

    session_id: SessionId
    expected_version: int
    patch: Mapping[str, Any]
    at_ms: int


@dataclass(frozen=True, slots=True)
class ConsumeRange(WriteOp[None]):
    """Guard and write: mark ``(from_seq, to_seq]`` consumed.

    Raises ``Conflict`` unless ``consumed_seq == from_seq`` and ``to_seq <= last_seq``, and,
    when ``require_last_seq`` is set, unless ``last_seq == to_seq`` (no unseen message);
    and unless the session's mode is ``mode`` (``None``: any mode), checked on the row the
    update locks: ``Conflict("mode")``. An agent turn's commit keeps the default, so a
    handoff, cool-down or block that lands under a running turn refuses its reply.
    """

    session_id: SessionId
    from_seq: int
    to_seq: int
    require_last_seq: bool
    at_ms: int
    mode: SessionMode | None = SessionMode.AGENT


@dataclass(frozen=True, slots=True)
class FlagSession(WriteOp[None]):
    """Flag the session for a person (``flagged=False`` clears the flag)."""

    session_id: SessionId
    flagged: bool
    reason: str | None
    at_ms: int


@dataclass(frozen=True, slots=True)
class RepinSession(WriteOp[None]):
    """Move the session to configuration version ``to_number`` (``canary`` cleared).

    Guards: the session is pinned to ``from_number`` (None: to no version), and
    ``to_number`` is the tenant's live version in this transaction (its pointer read
    with the lock session opens take), else ``Conflict``. With ``state_patch`` (an
    upcaster's result) the state is REPLACED by it (validated: ``StateContractError``)
    and ``state_version`` bumped; with
    ``expected_state_version`` too, only if the state is still at that version (else
    ``VersionConflict``: the upcaster read an older state). Appends ``session.repinned``
    {from, to, reason, migrated}.
    """

    tenant: TenantId
    session_id: SessionId
    from_number: int | None
    to_number: int
    reason: str
    state_patch: Mapping[str, Any] | None
    at_ms: int
    expected_state_version: int | None = None


@dataclass(frozen=True, slots=True)
class CloseSession(WriteOp[None]):
    """Close the session: status CLOSED, ``closed_at_ms`` set.

    Guard: the session is open, every message is consumed (``last_seq == consumed_seq``), no
    turn of it is live, no reply of it is undelivered and no replay of it is requested, else
    ``Conflict`` with reason ``"closed"``, ``"unconsumed"``, ``"live_turn"``,
    ``"undelivered"`` or ``"replay"``. Commit it with the session's fence guard so it never
    races a turn. A message appended after the close opens a new session (on the then-live
    version); the closed one stays readable. Appends ``session.closed`` {reason, idle_since_ms}.
    """

    tenant: TenantId
    session_id: SessionId
    at_ms: int
    reason: str
    idle_since_ms: int


@dataclass(frozen=True, slots=True)
class SessionFilter:
    flagged: bool | None = None
    status: SessionStatus | None = None
    customer: str | None = None
    mode: SessionMode | None = None
    limit: int = 100


@runtime_checkable
class SessionStore(Protocol):
    """Reads of sessions.

    Guarantees: at most one OPEN session per session key; ``last_seq`` only grows and is
    advanced in the same transaction as the message it counts; ``consumed_seq`` only grows
    and never passes ``last_seq``; ``state`` is returned upcast to the current contract.
    """

    async def get(self, tenant: TenantId, session_id: SessionId) -> SessionRecord | None: ...

    async def find_open(self, tenant: TenantId, key: SessionKey) -> SessionRecord | None: ...

    async def list_sessions(
        self, tenant: TenantId, where: SessionFilter | None = None
    ) -> list[SessionRecord]:
        """Newest activity first."""
        ...
