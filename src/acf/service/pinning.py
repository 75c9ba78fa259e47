"""Which configuration version a session's next turn runs under (DESIGN §17): pure rules.

A session keeps the version it was assigned when it opened. At a turn's start it moves to
the live version (``RepinSession``, audited) only when:

- its version was rolled back (a live rollback, or a canary rolled back) — ``rolled_back``;
- the live version applies ``next_turn`` and the session is on another version that is not
  the running canary — ``next_turn`` (its state upcast when the live version declares an
  upcaster);
- it was opened before the tenant had any version — ``unpinned``;
- its version cannot serve it (its agent is not in it, the version is missing or cannot be
  built) and it is not the live one — ``unservable`` (decided by the driver when the
  binding cannot be had, not by ``repin_reason``).

What the session's state says about its scenario, step and runtime overrides is read here
too: the state's ``scenario``, ``step`` (set by the pipeline) and ``config_overrides`` (set
through the API), acf's part of the state contract (``acf.domain.state.StateV2``).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acf.domain.config_versions import ApplyMode


class RepinReason:
    ROLLED_BACK = "rolled_back"
    NEXT_TURN = "next_turn"
    UNPINNED = "unpinned"
    UNSERVABLE = "unservable"


@dataclass(frozen=True, slots=True)
class VersionView:
    """What the rule needs to know about the tenant's versions now."""

    live: int | None
    live_apply: ApplyMode | None = None
    canary: int | None = None


def repin_reason(pinned: int | None, pinned_rolled_back: bool, now: VersionView) -> str | None:
    """Why a session pinned to ``pinned`` moves to the live version at this turn (None:
    it stays)."""
    if now.live is None or pinned == now.live:
        return None
    if pinned is None:
        return RepinReason.UNPINNED
    if pinned_rolled_back:
        return RepinReason.ROLLED_BACK
    if pinned == now.canary:
        return None  # the canary's sessions stay on it until it is promoted or rolled back
    if now.live_apply is ApplyMode.NEXT_TURN:
        return RepinReason.NEXT_TURN
    return None


def upcasts(reason: str) -> bool:
    """Whether the state is migrated by the live version's upcaster: only for a version
    applied ``next_turn`` (a rollback returns to a version whose upcaster was written for
    the versions before it, not for the one rolled back)."""
    return reason == RepinReason.NEXT_TURN


def _field(state: Mapping[str, Any], name: str) -> Any:
    return state.get(name)  # acf's part of the state contract (``StateV2``)


def scenario_of(state: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The session's scenario and step (strings), if its state names them."""
    scenario, step = _field(state, "scenario"), _field(state, "step")
    if not isinstance(scenario, str) or not scenario:
        return None, None  # a step means nothing without its scenario
    return scenario, step if isinstance(step, str) and step else None


def overrides_of(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """The session's runtime overrides (``config_overrides``), if any."""
    overrides = _field(state, "config_overrides")
    return overrides if isinstance(overrides, Mapping) else {}


def scenario_stamp(label: str, scenario: str, scenario_hash: str) -> dict[str, str]:
    """The scenario version stamp the state keeps: the version and the scenario's hash."""
    return {"label": label, "scenario": scenario, "hash": scenario_hash}
