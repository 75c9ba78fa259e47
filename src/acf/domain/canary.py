"""The canary decision (DESIGN §17; seed 002 D-AG-003, D-AG-014): given how the live version
and the canary did, hold, roll the canary back, move it to the next share, or promote it.

Pure: the caller reads the two arms' ``ArmStats`` and the pointer and acts on the answer.

- A breach counts only when it is measurable: both arms have at least ``min_turns`` turns
  in the window compared. Below that the canary holds, whatever its rates look like (a
  handful of turns proves nothing either way), and it never advances.
- A measurable breach rolls the canary back at once, whatever the bake time: the canary's
  failure, fallback or handoff rate exceeds the live version's by more than its margin
  (absolute: 0.02 is two percentage points), or its p95 turn latency exceeds the live
  version's times ``latency_ratio``. The failure rate is checked first; the rollback's
  reason names the measure, both rates and the margin.
- Without a breach, the current share must have run for ``bake_s`` and be measurable before
  it moves to the next step (a share above every step, or the last step, is promoted
  instead); a share below the first step moves to the first step.
"""

from dataclasses import dataclass
from itertools import pairwise

from acf.domain.config_versions import ArmStats

DEFAULT_STEPS = (10, 25, 50, 100)


@dataclass(frozen=True, slots=True)
class CanaryPolicy:
    """How a tenant's canary is judged (the configuration's ``canary`` block)."""

    failure_margin: float = 0.02
    """Absolute: the canary may fail at most this much more often than live (0.02 = +2 points)."""
    fallback_margin: float = 0.05
    """Absolute, on the share of turns that answered with a fallback."""
    handoff_margin: float = 0.05
    """Absolute, on the share of turns handed to a person."""
    latency_ratio: float = 1.5
    """The canary's p95 turn latency may be at most this many times the live version's."""
    min_turns: int = 50
    """Turns each arm needs in the window before a breach counts (or a step may advance)."""
    bake_s: int = 600
    """How long each share runs without a breach before the next one."""
    steps: tuple[int, ...] = DEFAULT_STEPS
    """Canary shares in percent, increasing; after the last one's bake: promote."""

    def __post_init__(self) -> None:
        for name in ("failure_margin", "fallback_margin", "handoff_margin"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"canary.{name}: expected 0..1 (an absolute rate)")
        if self.latency_ratio < 1:
            raise ValueError("canary.latency_ratio: expected at least 1")
        if self.min_turns < 1:
            raise ValueError("canary.min_turns: expected at least 1")
        if self.bake_s < 0:
            raise ValueError("canary.bake_s: expected 0 or more")
        steps = self.steps
        if not steps or any(not 0 < s <= 100 for s in steps):
            raise ValueError("canary.steps: expected shares in 1..100")
        if any(a >= b for a, b in pairwise(steps)):
            raise ValueError("canary.steps: expected increasing shares")

    def next_step(self, share: int) -> int | None:
        """The first step above ``share``; None when ``share`` is at or past the last."""
        return next((step for step in self.steps if step > share), None)


@dataclass(frozen=True, slots=True)
class Hold:
    reason: str


@dataclass(frozen=True, slots=True)
class Rollback:
    measure: str
    """``failure``, ``fallback``, ``handoff`` or ``latency`` (the metric's label)."""
    reason: str
    """Names the measure, the canary's and the live version's values and the margin."""


@dataclass(frozen=True, slots=True)
class Advance:
    share: int


@dataclass(frozen=True, slots=True)
class Promote:
    pass


CanaryDecision = Hold | Rollback | Advance | Promote

MEASURES = ("failure", "fallback", "handoff", "latency")


_EPSILON = 1e-9
"""Exactly at the margin is no breach, whatever the float arithmetic says (0.07 - 0.05)."""


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def breach(live: ArmStats, canary: ArmStats, policy: CanaryPolicy) -> Rollback | None:
    """The first measure on which the canary is worse than live beyond its margin (both arms
    assumed measurable), or None."""
    turns = f"(canary {canary.turns} turns, live {live.turns})"
    rates = (
        ("failure", canary.failure_rate, live.failure_rate, policy.failure_margin),
        ("fallback", canary.fallback_rate, live.fallback_rate, policy.fallback_margin),
        ("handoff", canary.handoff_rate, live.handoff_rate, policy.handoff_margin),
    )
    for measure, theirs, ours, margin in rates:
        if theirs - ours > margin + _EPSILON:
            reason = (
                f"{measure} rate {_pct(theirs)} on the canary vs {_pct(ours)} live exceeds "
                f"the margin of +{margin * 100:.1f} points {turns}"
            )
            return Rollback(measure, reason)
    theirs_ms, ours_ms = canary.latency_p95_ms or 0, live.latency_p95_ms or 0
    if ours_ms > 0 and theirs_ms > ours_ms * policy.latency_ratio:
        reason = (
            f"latency p95 {theirs_ms} ms on the canary vs {ours_ms} ms live exceeds "
            f"the ratio of {policy.latency_ratio:g}x {turns}"
        )
        return Rollback("latency", reason)
    return None


def decide(
    live: ArmStats,
    canary: ArmStats,
    policy: CanaryPolicy,
    share: int,
    step_began_ms: int,
    now_ms: int,
) -> CanaryDecision:
    """What to do with a canary at ``share`` percent whose step began at ``step_began_ms``,
    given each arm's turns in the window compared."""
    short = [
        f"{arm} has {stats.turns} of {policy.min_turns} turns"
        for arm, stats in (("canary", canary), ("live", live))
        if stats.turns < policy.min_turns
    ]
    if short:
        return Hold("not measurable yet: " + ", ".join(short))
    found = breach(live, canary, policy)
    if found is not None:
        return found
    baked_ms = now_ms - step_began_ms
    if baked_ms < policy.bake_s * 1000:
        return Hold(f"baking at {share}%: {baked_ms // 1000} s of {policy.bake_s} s")
    following = policy.next_step(share)
    return Promote() if following is None else Advance(following)
