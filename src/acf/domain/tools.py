"""Tools and their side-effect policies (DESIGN §8): specs, idempotency keys, and what an
earlier ledger entry for the same key means for a new call. Pure."""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from string import Formatter
from typing import Any
from urllib.parse import quote

from acf.domain.errors import InvalidValue

DEFAULT_TOOL_TIMEOUT_MS = 10_000
BUSINESS_TTL_MS = 24 * 3600 * 1000
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


class SideEffectPolicy(StrEnum):
    PURE = "pure"
    """No side effect: safe to run any number of times."""
    IDEMPOTENT = "idempotent"
    """The backend deduplicates on the key: re-run with the same key."""
    COMPENSATABLE = "compensatable"
    """Has an undo (the compensation tool); never re-run blindly."""
    IRREVERSIBLE = "irreversible"
    """Cannot be undone: at most once per key, behind the irreversible gate."""


class DedupeScope(StrEnum):
    GROUP = "group"
    """Once per turn group (one attempt by the user to get something done)."""
    SESSION = "session"
    """Once per session."""
    BUSINESS = "business"
    """Once per business key within a TTL, across sessions ("already done at 10:32")."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    policy: SideEffectPolicy
    args_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    business_key: str | None = None
    """A template over the arguments, e.g. ``"order-{order_id}"``; default: all arguments."""
    dedupe_scope: DedupeScope | None = None
    """Default: BUSINESS for IRREVERSIBLE, GROUP otherwise."""
    dedupe_ttl_ms: int | None = None
    """For the BUSINESS scope; default 24 h."""
    compensation: str | None = None
    requires_confirmation: bool = False
    timeout_ms: int = DEFAULT_TOOL_TIMEOUT_MS
    status_text: str | None = None
    """What a progress event shows while it runs ("Checking your order...")."""
    description: str | None = None
    """What the tool does, for a model choosing it (an LLM agent's function schema)."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidValue(
                f"tool name {self.name!r}: expected lowercase letters, digits, '_', '.', '-'"
            )
        if self.policy is SideEffectPolicy.COMPENSATABLE and not self.compensation:
            raise InvalidValue(f"tool {self.name}: a COMPENSATABLE tool needs a compensation")
        if self.timeout_ms <= 0:
            raise InvalidValue(f"tool {self.name}: timeout_ms must be positive")
        if self.dedupe_ttl_ms is not None and self.dedupe_ttl_ms <= 0:
            raise InvalidValue(f"tool {self.name}: dedupe_ttl_ms must be positive")
        if self.business_key is not None:
            try:
                fields = [f for _, f, _, _ in Formatter().parse(self.business_key) if f]
            except ValueError as exc:
                raise InvalidValue(f"tool {self.name}: business_key: {exc}") from None
            if not fields:
                raise InvalidValue(
                    f"tool {self.name}: business_key must name at least one argument"
                )

    @property
    def scope(self) -> DedupeScope:
        if self.dedupe_scope is not None:
            return self.dedupe_scope
        if self.policy is SideEffectPolicy.IRREVERSIBLE:
            return DedupeScope.BUSINESS
        return DedupeScope.GROUP

    @property
    def ttl_ms(self) -> int | None:
        """How long a BUSINESS-scoped key holds; ``None`` for the other scopes."""
        if self.scope is not DedupeScope.BUSINESS:
            return None
        return self.dedupe_ttl_ms or BUSINESS_TTL_MS


def canonical(args: Mapping[str, Any]) -> str:
    return json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)


def business_key(spec: ToolSpec, args: Mapping[str, Any]) -> str:
    """The template filled from ``args``, or a digest of all of them."""
    if spec.business_key is None:
        return "args-" + hashlib.sha256(canonical(args).encode()).hexdigest()[:24]
    try:
        return spec.business_key.format_map(dict(args))
    except KeyError as exc:
        raise InvalidValue(
            f"tool {spec.name}: business_key needs argument {exc.args[0]!r}"
        ) from None


def idempotency_key(
    spec: ToolSpec, tenant: str, session_id: str, group_id: str, args: Mapping[str, Any]
) -> str:
    """``{tenant}:{tool}:{business_key}`` plus ``:group:{id}`` or ``:session:{id}`` by
    scope (DESIGN §8). Parts are percent-encoded, so a ``:`` inside one cannot collide."""
    parts = [tenant, spec.name, business_key(spec, args)]
    if spec.scope is DedupeScope.GROUP:
        parts += ["group", group_id]
    elif spec.scope is DedupeScope.SESSION:
        parts += ["session", session_id]
    return ":".join(quote(p, safe="") for p in parts)


class LedgerStatus(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"
    COMPENSATED = "compensated"


class Next(StrEnum):
    """What a call does when the ledger already holds its key."""

    RUN = "run"
    """Run (again) with the same key."""
    RETURN_RECORDED = "return_recorded"
    """Do not run: return the recorded result, saying it was already done (and when)."""
    IN_DOUBT = "in_doubt"
    """Do not run: the outcome is unknown; reconcile or escalate to a person."""


def next_step(policy: SideEffectPolicy, status: LedgerStatus | None) -> Next:
    """DESIGN §8's recovery rule for a call whose key is (or is not) in the ledger.

    A definite failure means nothing happened (and a compensated action was undone), so
    any policy may run again. A ``started``
    row without an outcome (a crash, or a timeout of a call whose outcome is unknown) may be
    re-run only when running twice is harmless (PURE, IDEMPOTENT)."""
    if status in (None, LedgerStatus.FAILED, LedgerStatus.COMPENSATED):
        return Next.RUN  # never happened, or undone
    if status is LedgerStatus.SUCCEEDED:
        return Next.RETURN_RECORDED
    if status is LedgerStatus.STARTED and policy in (
        SideEffectPolicy.PURE,
        SideEffectPolicy.IDEMPOTENT,
    ):
        return Next.RUN
    return Next.IN_DOUBT


class Outcome(StrEnum):
    OK = "ok"
    ALREADY_DONE = "already_done"
    """Not run again: the ledger holds the key's result (``done_at_ms`` says when)."""
    REFUSED = "refused"
    """The tool is not allowed for this agent: nothing ran."""
    INVALID = "invalid"
    """The arguments do not match the tool's schema: nothing ran."""
    FAILED = "failed"
    """The tool ran and failed definitely."""
    IN_DOUBT = "in_doubt"
    """The outcome is unknown; a person (or the reconcile hook) must settle it."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a pipeline gets back from the gateway; never an exception for a tool's own
    failure, so the pipeline can say something sensible."""

    outcome: Outcome
    value: Any = None
    error: str | None = None
    done_at_ms: int | None = None
    execution_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.OK, Outcome.ALREADY_DONE)
