"""Session state: a versioned contract with a validator, upcasters and a merge-patch rule.

Stored state always carries ``schema_version``. Older shapes are upcast step by step on
load (``upcast``), every write is validated (``validate``), and pipelines change state only
through JSON merge patches (RFC 7396, ``apply_patch``); the store adds optimistic
versioning on top, so two writers that read the same version cannot both win.
"""

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from acf.domain.errors import StateContractError

CURRENT_SCHEMA_VERSION = 2

JsonObject = dict[str, Any]


class PendingConfirmation(BaseModel):
    """An action waiting for the customer's explicit yes (DESIGN §8): it runs under the
    idempotency key fixed here, and never on timeout."""

    model_config = ConfigDict(extra="forbid")

    confirmation_id: str
    tool: str
    args: dict[str, Any]
    idempotency_key: str
    prompt: str
    yes_id: str
    no_id: str
    requested_at_ms: int
    expires_at_ms: int


class HandoverBy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_id: str
    name: str


class Handover(BaseModel):
    """A person handled the conversation and handed it back (``ResumeAgent``): the agent's
    next turn sees it; that turn's commit clears it."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = None
    by: HandoverBy
    at_ms: int


class PaceMeta(BaseModel):
    """The customer's pace between fragments (``acf.domain.pace``), learned by the agent's
    commits when the channel's ``pace`` is on."""

    model_config = ConfigDict(extra="forbid")

    samples: int
    gap_ms: float
    spread_ms: float
    last_at_ms: int | None = None
    replied_at_ms: int | None = None


class StateMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lane: str | None = None
    sticky_until_ms: int | None = None
    confirmation: PendingConfirmation | None = None
    awaiting_answer: bool | None = None
    """The last reply asked a question the agent waits for (``PipelineResult.
    awaiting_answer``): the customer's next message closes the window at once."""
    handover: Handover | None = None
    pace: PaceMeta | None = None

    @model_validator(mode="after")
    def _sticky_needs_lane(self) -> "StateMeta":
        if self.sticky_until_ms is not None and self.lane is None:
            raise ValueError("sticky_until_ms is set but lane is not")
        return self


class StateV2(BaseModel):
    """The current contract. ``data`` belongs to the pipeline; the rest to acf."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = CURRENT_SCHEMA_VERSION
    meta: StateMeta = StateMeta()
    slots: dict[str, Any] = {}
    data: dict[str, Any] = {}
    scenario: str | None = None
    """The agent's scenario the session is in (set by the pipeline): its turns run with that
    scenario's resolved configuration (``acf.config.layers``)."""
    step: str | None = None
    """The scenario's current step (set by the pipeline)."""
    scenario_version: dict[str, Any] | None = None
    """Stamped by acf when a turn runs under a scenario: ``{"label": "v3", "hash": …}``."""
    config_overrides: dict[str, Any] | None = None
    """The session's runtime overrides (``PUT /v1/sessions/{id}/config-overrides``), only
    of the keys the agent lists as ``overridable``."""

    @model_validator(mode="after")
    def _version_is_current(self) -> "StateV2":
        if self.schema_version != CURRENT_SCHEMA_VERSION:
            raise ValueError(f"schema_version must be {CURRENT_SCHEMA_VERSION}")
        return self


def initial_state() -> JsonObject:
    return validate({})


def _v1_to_v2(state: JsonObject) -> JsonObject:
    # v1 was flat, versioned by "version", with the lane at the top level.
    rest = {k: v for k, v in state.items() if k not in {"version", "lane", "sticky_until_ms"}}
    slots = rest.pop("slots", {})
    return {
        "schema_version": 2,
        "meta": {"lane": state.get("lane"), "sticky_until_ms": state.get("sticky_until_ms")},
        "slots": slots,
        "data": rest,
    }


UPCASTERS: dict[int, Callable[[JsonObject], JsonObject]] = {1: _v1_to_v2}
"""Upcaster from version N to N+1, keyed by N."""


def schema_version_of(state: Mapping[str, Any]) -> int:
    version = state.get("schema_version", state.get("version"))
    if not isinstance(version, int) or isinstance(version, bool):
        raise StateContractError("state has no integer schema_version")
    return version


def upcast(state: Mapping[str, Any]) -> JsonObject:
    """Bring a stored state of any known older version to the current contract."""
    current: JsonObject = dict(state)
    version = schema_version_of(current)
    if version > CURRENT_SCHEMA_VERSION:
        raise StateContractError(
            f"state schema_version {version} is newer than this acf ({CURRENT_SCHEMA_VERSION})"
        )
    while version < CURRENT_SCHEMA_VERSION:
        step = UPCASTERS.get(version)
        if step is None:
            raise StateContractError(f"no upcaster from state schema_version {version}")
        current = step(current)
        version = schema_version_of(current)
    return validate(current)


def validate(state: Mapping[str, Any]) -> JsonObject:
    """Validate against the current contract; returns the normalised state."""
    try:
        normalised = StateV2.model_validate(dict(state)).model_dump()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise StateContractError(f"invalid session state: {problems}") from None
    for optional in ("confirmation", "awaiting_answer", "handover", "pace"):
        if normalised["meta"].get(optional) is None:
            normalised["meta"].pop(optional, None)  # absent, as before it existed
    for optional in ("scenario", "step", "scenario_version", "config_overrides"):
        if normalised.get(optional) is None:
            normalised.pop(optional, None)
    return normalised


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, ``None`` deletes, else replace."""
    if not isinstance(patch, Mapping):
        return patch
    result: JsonObject = dict(target) if isinstance(target, Mapping) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def combine_patches(first: Mapping[str, Any], second: Mapping[str, Any]) -> JsonObject:
    """One merge patch doing what ``first`` then ``second`` do, keeping ``second``'s
    deletions (``None``). Where ``first`` deletes a key and ``second`` sets an object at it,
    the result merges that object into the key's old value: to replace a value whose old
    content is known, write ``replacement_patch(old, new)``."""
    combined: JsonObject = dict(first)
    for name, value in second.items():
        earlier = combined.get(name)
        if isinstance(value, Mapping) and isinstance(earlier, Mapping):
            combined[name] = combine_patches(earlier, value)
        else:
            combined[name] = dict(value) if isinstance(value, Mapping) else value
    return combined


def replacement_patch(old: Any, new: Mapping[str, Any]) -> JsonObject:
    """A merge patch that turns ``old`` into exactly ``new``: keys of ``old`` that ``new``
    lacks are deleted, at every depth (a plain patch of ``new`` would merge into ``old`` and
    keep them)."""
    before: Mapping[str, Any] = old if isinstance(old, Mapping) else {}
    patch: JsonObject = {name: None for name in before if name not in new}
    for name, value in new.items():
        earlier = before.get(name)
        if isinstance(value, Mapping) and isinstance(earlier, Mapping):
            patch[name] = replacement_patch(earlier, value)
        else:
            patch[name] = value
    return patch


def apply_patch(state: Mapping[str, Any], patch: Mapping[str, Any]) -> JsonObject:
    """Apply a merge patch to a current-version state and validate the result."""
    if "schema_version" in patch:
        raise StateContractError("a state patch must not change schema_version")
    return validate(merge_patch(state, patch))
