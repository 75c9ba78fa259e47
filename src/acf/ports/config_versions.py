"""Configuration version store (DESIGN §17): a tenant's immutable versions and its pointer.

Reads are tenant-scoped like every other table (row-level security on PostgreSQL). Writes
are ``WriteOp`` values committed through ``store.uow.commit(tenant, [...])``; each appends
its audit FabricEvent in the same transaction, so the pointer and its audit never disagree.
A guard that fails raises ``Conflict`` (its message says what was expected) and nothing of
the unit commits.

Ordering: a pointer change takes the tenant's pointer row ``FOR UPDATE`` on PostgreSQL and
a session open reads it ``FOR SHARE`` in the transaction that opens the session, so a
session opened after a promote committed is assigned the new version, and no session is
ever assigned a version that was retired when its open committed. SQLite serialises every
write transaction, which gives the same order.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from acf.domain.config_versions import ApplyMode, ArmStats, ConfigPointer, ConfigVersion
from acf.domain.ids import SessionId, TenantId
from acf.ports.unit_of_work import WriteOp


@dataclass(frozen=True, slots=True)
class PushResult:
    version: ConfigVersion
    created: bool
    """False when a version with the same content hash existed (it is returned instead)."""


@dataclass(frozen=True, slots=True)
class PushVersion(WriteOp[PushResult]):
    """Store a new DRAFT version numbered max+1 for the tenant; when a version with the same
    ``content_hash`` exists, return it (``created=False``) and write nothing. Event
    ``config.pushed``."""

    tenant: TenantId
    content_hash: str
    source: Mapping[str, Any]
    resolved: Mapping[str, Any]
    provenance: Mapping[str, Any]
    author: str
    message: str
    git_commit: str | None
    apply: ApplyMode
    at_ms: int
    actor: str | None = None
    """Who pushed (an API key's id and name, never the key); ``author`` is what they said."""


@dataclass(frozen=True, slots=True)
class PromoteVersion(WriteOp[ConfigPointer]):
    """Make ``number`` live (it must exist and not be rolled back). The old live version and
    any running canary become RETIRED (not rolled back); ``previous_live`` becomes the old
    live. Event ``config.promoted`` (``forced``: promoted without a passed gate, said in
    the event)."""

    tenant: TenantId
    number: int
    at_ms: int
    actor: str
    forced: bool = False
    canary_only: bool = False
    """Guard: ``number`` must be the running canary (the canary watch's promote, so a
    decision read a moment ago never overrides a promote made meanwhile)."""


@dataclass(frozen=True, slots=True)
class StartCanary(WriteOp[ConfigPointer]):
    """Put ``number`` (DRAFT, or RETIRED not rolled back) on canary at ``share`` percent
    (0..100, else ``InvalidValue``; 0 pauses it: new sessions all get the live version).
    Needs a live version and no running canary (the Conflict names the running one). Event
    ``config.canary_started`` (``forced``: started without a passed gate, said in the
    event)."""

    tenant: TenantId
    number: int
    share: int
    at_ms: int
    actor: str
    forced: bool = False


@dataclass(frozen=True, slots=True)
class SetCanaryShare(WriteOp[ConfigPointer]):
    """Move the running canary ``number`` to ``share`` percent (guard: it is the canary).
    Event ``config.canary_advanced``."""

    tenant: TenantId
    number: int
    share: int
    at_ms: int
    reason: str
    from_share: int | None = None
    """Guard: the canary still runs at this share (two watches deciding the same step
    commit it once)."""


@dataclass(frozen=True, slots=True)
class RollbackCanary(WriteOp[ConfigPointer]):
    """Retire the running canary ``number`` as rolled back and clear the canary (guard: it
    is the canary). Event ``config.canary_rolled_back`` with ``reason`` and ``stats``."""

    tenant: TenantId
    number: int
    reason: str
    at_ms: int
    actor: str
    stats: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RollbackLive(WriteOp[ConfigPointer]):
    """Return to ``previous_live``: the current live version is retired as rolled back, the
    previous one is live again, ``previous_live`` is cleared, and a running canary is
    retired. Needs a previous live version. Event ``config.rolled_back``."""

    tenant: TenantId
    at_ms: int
    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordGate(WriteOp[ConfigVersion]):
    """Merge ``{name: {"passed", "at_ms", "summary"}}`` into the version's ``gates``.
    Event ``config.gate_recorded``."""

    tenant: TenantId
    number: int
    name: str
    passed: bool
    summary: Mapping[str, Any]
    at_ms: int


@runtime_checkable
class ConfigVersions(Protocol):
    """Reads of the version store.

    Guarantees: every read is scoped to its tenant; a version's content (source, resolved,
    provenance, hash) never changes once pushed; numbers are dense per tenant from 1; at
    most one version per tenant is LIVE and at most one is CANARY, and the pointer says
    which.
    """

    async def get(self, tenant: TenantId, number: int) -> ConfigVersion | None: ...

    async def by_hash(self, tenant: TenantId, content_hash: str) -> ConfigVersion | None: ...

    async def history(self, tenant: TenantId, limit: int = 50) -> list[ConfigVersion]:
        """Newest first."""
        ...

    async def pointer(self, tenant: TenantId) -> ConfigPointer | None:
        """None until the tenant's first promote."""
        ...

    async def arm_stats(self, tenant: TenantId, number: int, since_ms: int) -> ArmStats:
        """The TurnRecords labelled ``v{number}`` that started at or after ``since_ms``."""
        ...

    async def open_sessions_on(
        self, tenant: TenantId, number: int, limit: int = 1000
    ) -> list[SessionId]:
        """Open sessions pinned to ``number``."""
        ...
