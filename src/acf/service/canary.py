"""The canary watch (DESIGN §17; seed 002 D-AG-003, D-AG-014): every ``check_every_s`` it
judges each running canary of the process's tenants and acts on the decision
(``acf.domain.canary.decide``): roll it back, move it to the next share, or promote it.

What is compared: the live version's turns since the canary started against the canary's
turns since its current share began (``ConfigVersions.arm_stats``). The live version does
not change while a canary runs, so its whole run is the baseline (and stays measurable at
100 %, when new sessions no longer reach it); each share of the canary is judged on its
own turns, so a regression that shows only under more traffic is caught at that step.

Timing: a breach is acted on at the first check after it became measurable, so within
``check_every_s`` (30 s by default, at most 60 s in the configuration) plus one check's
time — well within D-AG-014's two minutes.

Safety with several workers: every worker may run a watch. The store's ops are guarded
(``RollbackCanary`` and ``SetCanaryShare`` need the version still on canary; a promote of a
version that is live already, or was rolled back, is refused), so when two watches act at
once one commits and the other gets a ``Conflict``, which is logged and skipped: someone
else acted. (Two watches advancing the same step both commit; the second only restates
the share a moment later.) After a commit, ``config_changes.announce(tenant)`` tells every
process; the canary's open sessions move to the live version at their next turn (the
runtime re-pins them), not here.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from acf.domain.canary import (
    Advance,
    CanaryDecision,
    CanaryPolicy,
    Hold,
    Promote,
    Rollback,
    decide,
)
from acf.domain.config_versions import ArmStats, ConfigPointer, version_label
from acf.domain.errors import Conflict
from acf.domain.ids import TenantId
from acf.observability.config_metrics import ConfigMetrics
from acf.observability.redaction import error_text
from acf.ports.clock import Clock
from acf.ports.config_changes import ConfigChanges
from acf.ports.config_versions import PromoteVersion, RollbackCanary, SetCanaryShare
from acf.ports.store import Store
from acf.ports.unit_of_work import WriteOp

log = structlog.get_logger("acf.canary")

ACTOR = "canary watch"
"""The actor of the watch's lifecycle events (the console shows them as automatic)."""
CHECK_EVERY_S = 30.0

PolicyOf = Callable[[TenantId, ConfigPointer], Awaitable[CanaryPolicy]]
"""The policy a tenant's running canary is judged by."""
Tenants = Callable[[], Iterable[TenantId]]
"""The tenants whose canaries this process watches (read at every check)."""

_POLICY_FIELDS = (
    "failure_margin",
    "fallback_margin",
    "handoff_margin",
    "latency_ratio",
    "min_turns",
    "bake_s",
)


def policy_from_resolved(resolved: Mapping[str, Any]) -> CanaryPolicy:
    """The ``canary`` block of a version's resolved configuration (the tenant's fields, as
    validated at push), defaults where it says nothing."""
    block = resolved.get("canary")
    if not isinstance(block, Mapping):
        return CanaryPolicy()
    fields: dict[str, Any] = {k: block[k] for k in _POLICY_FIELDS if k in block}
    steps = block.get("steps")
    if isinstance(steps, list | tuple):
        fields["steps"] = tuple(int(s) for s in steps)
    return CanaryPolicy(**fields)


def live_policy(store: Store) -> PolicyOf:
    """The policy of the tenant's live version: the version that is trusted judges the
    candidate (a canary cannot loosen its own margins); defaults without one."""

    async def policy_of(tenant: TenantId, pointer: ConfigPointer) -> CanaryPolicy:
        if pointer.live is None:
            return CanaryPolicy()
        live = await store.config_versions.get(tenant, pointer.live)
        return CanaryPolicy() if live is None else policy_from_resolved(live.resolved)

    return policy_of


@dataclass(frozen=True, slots=True)
class Checked:
    """What one check of one tenant's canary decided, and whether this process's commit
    of it took (False for a hold, and when another process acted first)."""

    tenant: TenantId
    canary: int
    share: int
    decision: CanaryDecision
    acted: bool


def _stats(stats: ArmStats, since_ms: int) -> dict[str, Any]:
    return {
        "turns": stats.turns,
        "failed": stats.failed,
        "fallback": stats.fallback,
        "handoff": stats.handoff,
        "latency_p95_ms": stats.latency_p95_ms,
        "since_ms": since_ms,
    }


class CanaryWatch:
    """Judges the running canaries of ``tenants()`` every ``check_every_s``.

    ``start`` runs the loop in the background until ``stop``; ``check_all`` / ``check`` run
    one round now (tests, or a caller with its own schedule). A tenant whose check fails
    (the store away) is logged and tried again at the next round.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        changes: ConfigChanges,
        tenants: Tenants,
        *,
        policy_of: PolicyOf | None = None,
        metrics: ConfigMetrics | None = None,
        check_every_s: float = CHECK_EVERY_S,
    ) -> None:
        if check_every_s <= 0:
            raise ValueError("canary watch: check_every_s must be positive")
        self._store = store
        self._clock = clock
        self._changes = changes
        self._tenants = tenants
        self._policy_of = policy_of or live_policy(store)
        self._metrics = metrics
        self.check_every_s = check_every_s
        self.rounds = 0
        """Rounds the background loop completed (a test waits on it)."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the canary watch is already started")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="canary-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self.check_every_s)
            try:
                await self.check_all()
            except Exception as exc:  # never let one bad round end the watch
                log.error("canary.round_failed", error=error_text(exc))
            self.rounds += 1

    async def check_all(self) -> list[Checked]:
        """One round over every tenant; what each running canary's check decided."""
        done: list[Checked] = []
        for tenant in list(self._tenants()):
            try:
                checked = await self.check(tenant)
            except Exception as exc:  # the store is away: the next round tries again
                log.warning("canary.check_failed", tenant=tenant, error=error_text(exc))
                continue
            if checked is not None:
                done.append(checked)
        return done

    async def check(self, tenant: TenantId) -> Checked | None:
        """Judge ``tenant``'s running canary and act on it; None when none is running."""
        versions = self._store.config_versions
        pointer = await versions.pointer(tenant)
        if pointer is None or pointer.canary is None or pointer.live is None:
            self._share(tenant, 0)
            return None
        self._share(tenant, pointer.canary_share)
        policy = await self._policy_of(tenant, pointer)
        started = pointer.canary_started_at_ms or pointer.updated_at_ms
        step = pointer.canary_step_at_ms or started
        live = await versions.arm_stats(tenant, pointer.live, started)
        canary = await versions.arm_stats(tenant, pointer.canary, step)
        now = self._clock.now_ms()
        decision = decide(live, canary, policy, pointer.canary_share, step, now)
        checked = Checked(tenant, pointer.canary, pointer.canary_share, decision, acted=False)
        labels = {
            "tenant": tenant,
            "canary": version_label(pointer.canary),
            "live": version_label(pointer.live),
            "share": pointer.canary_share,
        }
        if isinstance(decision, Hold):
            log.debug("canary.hold", reason=decision.reason, **labels)
            return checked
        stats = {"live": _stats(live, started), "canary": _stats(canary, step)}
        forced = isinstance(decision, Promote) and not await self._gate_passed(
            tenant, pointer.canary
        )
        op = _op(
            tenant, pointer.canary, pointer.live, pointer.canary_share, decision, stats, now, forced
        )
        try:
            await self._store.uow.commit(tenant, [op])
        except Conflict as exc:  # another watch (or a person) acted first
            log.info("canary.superseded", reason=exc.reason, **labels)
            return checked
        self._acted(tenant, decision)
        log.info("canary.acted", decision=_describe(decision), stats=stats, **labels)
        await self._changes.announce(tenant)  # never raises: a lost one costs seconds
        return Checked(tenant, pointer.canary, pointer.canary_share, decision, acted=True)

    async def _gate_passed(self, tenant: TenantId, number: int) -> bool:
        """Whether the canary passed its scenarios gate: a canary started with ``force``
        is promoted as forced too, so the audit of the promote says so."""
        version = await self._store.config_versions.get(tenant, number)
        gate = None if version is None else version.gates.get("scenarios")
        return isinstance(gate, Mapping) and gate.get("passed") is True

    def _acted(self, tenant: TenantId, decision: CanaryDecision) -> None:
        match decision:
            case Rollback(measure, _):
                if self._metrics is not None:
                    self._metrics.canary_rolled_back(tenant, measure)
            case Advance(share):
                self._share(tenant, share)
            case Promote():
                self._share(tenant, 0)

    def _share(self, tenant: TenantId, share: int) -> None:
        if self._metrics is not None:
            self._metrics.canary_share(tenant, share)


def _op(
    tenant: TenantId,
    number: int,
    live: int,
    share: int,
    decision: Rollback | Advance | Promote,
    stats: dict[str, Any],
    now: int,
    forced: bool = False,
) -> WriteOp[ConfigPointer]:
    """The guarded op that carries ``decision`` out (each needs ``number`` still on canary)."""
    match decision:
        case Rollback(measure, reason):
            text = f"canary {version_label(number)} against live {version_label(live)}: {reason}"
            data = {"measure": measure, **stats}
            return RollbackCanary(tenant, number, text, now, ACTOR, stats=data)
        case Advance(following):
            text = (
                f"{share}% baked without a breach "
                f"(canary {stats['canary']['turns']} turns, live {stats['live']['turns']})"
            )
            return SetCanaryShare(tenant, number, following, now, text, from_share=share)
        case Promote():
            return PromoteVersion(tenant, number, now, ACTOR, forced=forced, canary_only=True)


def _describe(decision: CanaryDecision) -> str:
    match decision:
        case Rollback(_, reason):
            return f"rollback: {reason}"
        case Advance(share):
            return f"advance to {share}%"
        case Promote():
            return "promote"
        case Hold(reason):
            return f"hold: {reason}"
