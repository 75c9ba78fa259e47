"""A tenant's configuration lifecycle (DESIGN §17): validate, push, history, diff, promote,
canary, rollback and explain, as the API (and ``acf config`` through it) runs them.

Every operation is scoped to one tenant: another tenant's version is as absent as an
unknown one (``NoSuchVersion``), and a configuration naming another tenant is refused
(``ForeignTenant``) before anything is stored. Each pointer change is one unit of work
(the version store's op appends its audit event in the same transaction) followed by
``config_changes.announce(tenant)``, so every process learns of it at once (or at its next
periodic re-read).

``promote`` and starting a canary are gated: the version needs a passed ``scenarios`` gate
(``acf scenarios run PATH --tenant T --version N`` records it) unless forced, and a forced
promote or canary says so in its audit event (``forced``). Moving a running canary's
share needs no gate.

The configuration layer itself (parsing, merging, explaining) is ``ConfigFiles``, given by
the caller: the service never imports ``acf.config``.
"""

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from acf.domain.config_versions import ApplyMode, ConfigPointer, ConfigVersion
from acf.domain.errors import AcfError, Conflict
from acf.domain.ids import TenantId
from acf.ports.clock import Clock
from acf.ports.config_changes import ConfigChanges
from acf.ports.config_versions import (
    PromoteVersion,
    PushResult,
    PushVersion,
    RollbackCanary,
    RollbackLive,
    SetCanaryShare,
    StartCanary,
)
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp

SCENARIOS_GATE = "scenarios"
"""The gate ``promote`` needs passed (unless forced)."""


class LifecycleError(AcfError):
    """A lifecycle operation refused; the message says why and what to do."""


class NoSuchVersion(LifecycleError):
    """The tenant has no such version (another tenant's is reported the same way)."""


class ForeignTenant(LifecycleError):
    """The configuration names a tenant other than the caller's."""


class Refused(LifecycleError):
    """The operation conflicts with the version's state or the tenant's pointer."""


@dataclass(frozen=True, slots=True)
class Upload:
    """A configuration sent over the API: YAML text and the files it names (rules,
    prompts, base agents) by their path relative to it."""

    yaml: str
    files: Mapping[str, str] = field(default_factory=dict)
    name: str = "acf.yaml"
    """The configuration file's name (part of the version's source, as ``acf serve``
    records its file's: the same file pushed either way is the same version)."""


class PreparedSource(Protocol):
    """One tenant's version, ready to store (``acf.config.versions_source.VersionSource``)."""

    @property
    def content_hash(self) -> str: ...
    @property
    def source(self) -> Mapping[str, Any]: ...
    @property
    def resolved(self) -> Mapping[str, Any]: ...
    @property
    def provenance(self) -> Mapping[str, Any]: ...
    @property
    def apply(self) -> str: ...
    @property
    def git_commit(self) -> str | None: ...


class KeyChange(Protocol):
    """One dotted key whose resolved value differs between two versions."""

    @property
    def key(self) -> str: ...
    @property
    def before(self) -> Any: ...
    @property
    def after(self) -> Any: ...
    @property
    def change(self) -> str:
        """``added``, ``removed`` or ``changed``."""
        ...


class ExplainedValue(Protocol):
    """One resolved value and the layer and file that set it."""

    @property
    def key(self) -> str: ...
    @property
    def value(self) -> Any: ...
    @property
    def layer(self) -> str: ...
    @property
    def source(self) -> str: ...


class ConfigFiles(Protocol):
    """The configuration layer as the lifecycle uses it. Blocking (files, parsing): the
    lifecycle calls it on a worker thread. Invalid input raises ``InvalidValue`` whose
    message names the file and each field."""

    def prepare(self, upload: Upload) -> Mapping[str, PreparedSource]:
        """Validate the upload; each tenant it names, ready to store."""
        ...

    def diff(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> Sequence[KeyChange]: ...

    def explain(
        self, version: ConfigVersion, agent: str, key: str | None
    ) -> Sequence[ExplainedValue]:
        """``NoSuchAgent`` when the version has no such agent."""
        ...

    def check_overrides(
        self,
        version: ConfigVersion | None,
        tenant: TenantId,
        agent: str,
        overrides: Mapping[str, Any],
    ) -> None:
        """``InvalidValue`` naming a key ``agent`` does not let a session override, or a
        value its field refuses. ``version`` None: the configuration file acf serves."""
        ...


class NoSuchAgent(NoSuchVersion):
    """The version has no such agent."""


@dataclass(frozen=True, slots=True)
class Explained:
    label: str
    """The version explained (``"v3"``)."""
    rows: list[ExplainedValue]


def gate_passed(version: ConfigVersion, name: str = SCENARIOS_GATE) -> bool | None:
    """True/False when the gate was recorded as passed/failed; None when never run."""
    gate = version.gates.get(name)
    if not isinstance(gate, Mapping):
        return None
    return gate.get("passed") is True


def promote_refusal(version: ConfigVersion, force: bool, action: str = "promote") -> str | None:
    """Why ``promote`` (or ``action``: starting a canary) refuses ``version`` (None: it may
    go ahead). Pure."""
    passed = gate_passed(version)
    if force or passed:
        return None
    run = f"acf scenarios run PATH --tenant {version.tenant} --version {version.number}"
    state = "failed its scenarios gate" if passed is False else "has no passed scenarios gate"
    return f"{version.label} {state}: run `{run}`, or {action} with force (audited)"


def foreign_tenants(tenant: TenantId, named: Sequence[str]) -> str | None:
    """Why a configuration naming ``named`` cannot be pushed by ``tenant`` (None: it
    names exactly ``tenant``). Pure."""
    others = sorted(t for t in named if t != tenant)
    if not others and tenant in named:
        return None
    if not others:
        return f"the configuration does not name tenant {tenant!r}"
    return (
        f"the configuration names tenant(s) {', '.join(repr(t) for t in others)}: this key "
        f"may push only tenant {tenant!r}'s configuration (one tenant per file; "
        "`acf config push --tenant` sends one tenant of a larger file)"
    )


class ConfigLifecycle:
    """The lifecycle operations over one store; announces every pointer change."""

    def __init__(
        self, store: Store, clock: Clock, changes: ConfigChanges, files: ConfigFiles
    ) -> None:
        self.store = store
        self.files = files
        self._clock = clock
        self._changes = changes

    # ---------- configurations in ----------

    async def validate(self, tenant: TenantId, upload: Upload) -> PreparedSource:
        """The tenant's version when ``upload`` is valid for it; ``InvalidValue`` naming
        the fields, or ``ForeignTenant``. Stores nothing."""
        sources = await asyncio.to_thread(self.files.prepare, upload)
        return self.source_for(tenant, sources)

    @staticmethod
    def source_for(tenant: TenantId, sources: Mapping[str, PreparedSource]) -> PreparedSource:
        refusal = foreign_tenants(tenant, list(sources))
        if refusal is not None:
            raise ForeignTenant(refusal)
        return sources[tenant]

    async def push(
        self,
        tenant: TenantId,
        config: Upload | PreparedSource,
        author: str,
        message: str,
        git_commit: str | None = None,
        actor: str | None = None,
    ) -> PushResult:
        """Store the tenant's configuration as a DRAFT version (or return the version with
        the same content, ``created=False``). Refused: an invalid configuration or an
        overlay incompatible with its base (``InvalidValue`` naming the keys), a
        configuration naming another tenant (``ForeignTenant``)."""
        source = await self.validate(tenant, config) if isinstance(config, Upload) else config
        op = PushVersion(
            tenant=tenant,
            content_hash=source.content_hash,
            source=source.source,
            resolved=source.resolved,
            provenance=source.provenance,
            author=author,
            message=message,
            git_commit=git_commit or source.git_commit,
            apply=ApplyMode(source.apply),
            at_ms=self._clock.now_ms(),
            actor=actor,
        )
        try:
            pushed = (await self.store.uow.commit(tenant, [op])).get(op)
        except Conflict as exc:  # concurrent pushes kept taking the number
            raise Refused(exc.reason) from None
        if pushed.created:
            await self._changes.announce(tenant)  # a new draft: nothing to apply, but news
        return pushed

    # ---------- reads ----------

    async def history(self, tenant: TenantId, limit: int = 50) -> list[ConfigVersion]:
        return await self.store.config_versions.history(tenant, limit)

    async def get(self, tenant: TenantId, number: int) -> ConfigVersion:
        version = await self.store.config_versions.get(tenant, number)
        if version is None:
            raise NoSuchVersion(f"tenant {tenant} has no configuration version v{number}")
        return version

    async def pointer(self, tenant: TenantId) -> ConfigPointer | None:
        return await self.store.config_versions.pointer(tenant)

    async def live(self, tenant: TenantId) -> ConfigVersion | None:
        pointer = await self.pointer(tenant)
        if pointer is None or pointer.live is None:
            return None
        return await self.get(tenant, pointer.live)

    async def diff(self, tenant: TenantId, a: int, b: int) -> list[KeyChange]:
        """What changes from ``a`` to ``b``, per dotted key of the resolved configuration."""
        before, after = await self.get(tenant, a), await self.get(tenant, b)
        return list(self.files.diff(before.resolved, after.resolved))

    async def explain(
        self, tenant: TenantId, agent: str, key: str | None, number: int | None = None
    ) -> Explained:
        """Each resolved value of ``agent`` (under ``key``, when given) with the layer and
        file that set it, in version ``number`` or else the live one."""
        if number is not None:
            version = await self.get(tenant, number)
        else:
            found = await self.live(tenant)
            if found is None:
                raise NoSuchVersion(f"tenant {tenant} has no live configuration version yet")
            version = found
        rows = await asyncio.to_thread(self.files.explain, version, agent, key)
        return Explained(version.label, list(rows))

    # ---------- the pointer ----------

    async def promote(
        self, tenant: TenantId, number: int, actor: str, force: bool = False
    ) -> ConfigPointer:
        """Make ``number`` live (blue-green: every new session from now on). Refused
        without a passed scenarios gate unless ``force``; a forced promote is audited."""
        version = await self.get(tenant, number)
        refusal = promote_refusal(version, force)
        if refusal is not None:
            raise Refused(refusal)
        forced = force and not gate_passed(version)
        op = PromoteVersion(tenant, number, self._clock.now_ms(), actor, forced=forced)
        return await self._commit(tenant, op)

    async def canary(
        self, tenant: TenantId, number: int, share: int, actor: str, force: bool = False
    ) -> ConfigPointer:
        """Put ``number`` on canary at ``share`` percent of new sessions (refused without a
        passed scenarios gate unless ``force``, audited), or move the running canary
        ``number`` to ``share`` (no gate)."""
        version = await self.get(tenant, number)
        pointer = await self.pointer(tenant)
        now = self._clock.now_ms()
        if pointer is not None and pointer.canary == number:
            reason = f"share set to {share}% by {actor}"
            return await self._commit(tenant, SetCanaryShare(tenant, number, share, now, reason))
        refusal = promote_refusal(version, force, "start the canary")
        if refusal is not None:
            raise Refused(refusal)
        forced = force and not gate_passed(version)
        op = StartCanary(tenant, number, share, now, actor, forced=forced)
        return await self._commit(tenant, op)

    async def rollback(
        self, tenant: TenantId, actor: str, reason: str, canary_only: bool = False
    ) -> ConfigPointer:
        """Back to the previous live version (sessions on the one left re-pin at their
        next turn), or, with ``canary_only``, retire the running canary only."""
        now = self._clock.now_ms()
        if not canary_only:
            return await self._commit(tenant, RollbackLive(tenant, now, actor, reason))
        pointer = await self.pointer(tenant)
        if pointer is None or pointer.canary is None:
            raise Refused(f"tenant {tenant} has no canary running")
        op = RollbackCanary(tenant, pointer.canary, reason, now, actor)
        return await self._commit(tenant, op)

    async def _commit(self, tenant: TenantId, op: WriteOp[ConfigPointer]) -> ConfigPointer:
        try:
            results = await self.store.uow.commit(tenant, [op])
        except Conflict as exc:
            raise Refused(exc.reason) from None
        await self._changes.announce(tenant)
        return results.get(op)
