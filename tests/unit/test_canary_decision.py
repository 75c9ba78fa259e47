"""The canary decision (``acf.domain.canary.decide``), as a table: hold, roll back, advance,
promote."""

import pytest

from acf.domain.canary import (
    Advance,
    CanaryDecision,
    CanaryPolicy,
    Hold,
    Promote,
    Rollback,
    decide,
)
from acf.domain.config_versions import ArmStats

POLICY = CanaryPolicy(min_turns=50, bake_s=600)
BEGAN = 1_000_000
BAKED = BEGAN + 600_000
EARLY = BEGAN + 30_000


def arm(
    turns: int,
    failed: int = 0,
    fallback: int = 0,
    handoff: int = 0,
    p95: int | None = 1000,
) -> ArmStats:
    return ArmStats(turns, failed, fallback, handoff, p95)


LIVE = arm(200, failed=2)  # 1 % failures

CASES: list[tuple[str, ArmStats, ArmStats, int, int, type, str]] = [
    # name, live, canary, share, now -> decision type, text in the reason / the share
    ("too few canary turns", LIVE, arm(49, failed=49), 10, BAKED, Hold, "canary has 49 of 50"),
    ("too few live turns", arm(10), arm(100), 10, BAKED, Hold, "live has 10 of 50"),
    ("no turns at all", arm(0), arm(0), 10, BAKED, Hold, "not measurable"),
    ("at exactly min_turns", LIVE, arm(50), 10, EARLY, Hold, "baking at 10%: 30 s of 600 s"),
    ("failure breach at once", LIVE, arm(50, failed=3), 10, EARLY, Rollback, "failure rate 6.0%"),
    ("failure reason names live", LIVE, arm(50, failed=3), 10, EARLY, Rollback, "vs 1.0% live"),
    ("failure reason margin", LIVE, arm(50, failed=3), 10, EARLY, Rollback, "+2.0 points"),
    ("failure at the margin holds", LIVE, arm(100, failed=3), 10, EARLY, Hold, "baking"),
    ("margin exact in floats", arm(100, failed=5), arm(100, failed=7), 10, EARLY, Hold, "bak"),
    ("failure just past", LIVE, arm(100, failed=4), 10, EARLY, Rollback, "failure rate 4.0%"),
    ("fallback breach", LIVE, arm(100, fallback=6), 25, EARLY, Rollback, "fallback rate 6.0%"),
    ("handoff breach", LIVE, arm(100, handoff=8), 25, EARLY, Rollback, "handoff rate 8.0%"),
    ("latency breach", LIVE, arm(100, p95=1600), 50, EARLY, Rollback, "latency p95 1600 ms"),
    ("latency at ratio holds", LIVE, arm(100, p95=1500), 50, EARLY, Hold, "baking"),
    ("latency unknown live", arm(100, p95=None), arm(100, p95=9000), 10, BAKED, Advance, "25"),
    ("failure checked first", LIVE, arm(100, failed=9, p95=9000), 10, EARLY, Rollback, "failure"),
    ("better canary advances", LIVE, arm(100), 10, BAKED, Advance, "25"),
    ("25 -> 50", LIVE, arm(100), 25, BAKED, Advance, "50"),
    ("50 -> 100", LIVE, arm(100), 50, BAKED, Advance, "100"),
    ("100 baked promotes", LIVE, arm(100), 100, BAKED, Promote, ""),
    ("off-step share moves up", LIVE, arm(100), 5, BAKED, Advance, "10"),
    ("not baked holds", LIVE, arm(100), 50, BAKED - 1, Hold, "599 s of 600 s"),
    ("breach after bake", LIVE, arm(100, failed=10), 100, BAKED, Rollback, "failure"),
]


@pytest.mark.parametrize(
    ("live", "canary", "share", "now", "kind", "text"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide(
    live: ArmStats, canary: ArmStats, share: int, now: int, kind: type, text: str
) -> None:
    decision: CanaryDecision = decide(live, canary, POLICY, share, BEGAN, now)
    assert type(decision) is kind, decision
    match decision:
        case Hold(reason) | Rollback(_, reason):
            assert text in reason
        case Advance(share):
            assert str(share) == text


def test_rollback_names_the_measure() -> None:
    decision = decide(LIVE, arm(100, fallback=20), POLICY, 10, BEGAN, EARLY)
    assert decision == Rollback(
        "fallback",
        "fallback rate 20.0% on the canary vs 0.0% live exceeds the margin of +5.0 points "
        "(canary 100 turns, live 200)",
    )


def test_a_last_step_below_100_promotes() -> None:
    policy = CanaryPolicy(steps=(5, 20), min_turns=1, bake_s=60)
    assert decide(LIVE, arm(10), policy, 5, 0, 60_000) == Advance(20)
    assert decide(LIVE, arm(10), policy, 20, 0, 60_000) == Promote()


def test_zero_bake_advances_once_measurable() -> None:
    policy = CanaryPolicy(min_turns=1, bake_s=0)
    assert decide(arm(1), arm(1), policy, 10, BEGAN, BEGAN) == Advance(25)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"failure_margin": -0.1}, "failure_margin"),
        ({"handoff_margin": 2}, "handoff_margin"),
        ({"latency_ratio": 0.5}, "latency_ratio"),
        ({"min_turns": 0}, "min_turns"),
        ({"bake_s": -1}, "bake_s"),
        ({"steps": ()}, "steps"),
        ({"steps": (10, 0)}, "steps"),
        ({"steps": (10, 150)}, "steps"),
        ({"steps": (25, 10)}, "increasing"),
        ({"steps": (10, 10)}, "increasing"),
    ],
)
def test_policy_refuses_nonsense(fields: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        CanaryPolicy(**fields)  # type: ignore[arg-type]
