"""The mode watch's decision on an open handoff (``acf.domain.handoff.sla_actions``): an SLA
breach once it waited unclaimed past the SLA, the "still waiting" notice once nobody
claimed or answered it in time; nothing for a resolved or claimed handoff."""

from dataclasses import replace

import pytest

from acf.domain.handoff import (
    HandoffPolicy,
    SlaAction,
    SlaBreach,
    StillWaiting,
    sla_actions,
    waiting_since_ms,
)
from acf.ports.handoffs import Handoff, HandoffSource

OPENED = 1_000_000
POLICY = HandoffPolicy(sla_ms=300_000, still_waiting_after_ms=900_000, still_waiting_notice="Hi")
OPEN = Handoff("t1", "h1", "s1", "fallbacks", HandoffSource.RULE, None, OPENED)


def claimed(until_ms: int) -> Handoff:
    return replace(OPEN, claimed_by="k1", claimed_at_ms=OPENED, claim_expires_at_ms=until_ms)


CASES: list[tuple[str, Handoff, HandoffPolicy, int, list[SlaAction]]] = [
    ("fresh", OPEN, POLICY, OPENED + 299_999, []),
    ("sla reached", OPEN, POLICY, OPENED + 300_000, [SlaBreach("h1", 300_000)]),
    (
        "sla and notice",
        OPEN,
        POLICY,
        OPENED + 900_000,
        [SlaBreach("h1", 900_000), StillWaiting("h1", "Hi")],
    ),
    (
        "breach marked, notice due",
        replace(OPEN, sla_breached_at_ms=OPENED + 300_000),
        POLICY,
        OPENED + 900_000,
        [StillWaiting("h1", "Hi")],
    ),
    (
        "both done",
        replace(OPEN, sla_breached_at_ms=OPENED + 1, still_waiting_at_ms=OPENED + 2),
        POLICY,
        OPENED + 10_000_000,
        [],
    ),
    ("resolved", replace(OPEN, resolved_at_ms=OPENED + 5), POLICY, OPENED + 10_000_000, []),
    ("live claim", claimed(OPENED + 2_000_000), POLICY, OPENED + 1_000_000, []),
    (
        "claim expired: waiting again",
        claimed(OPENED + 100_000),
        POLICY,
        OPENED + 900_000,
        [SlaBreach("h1", 900_000), StillWaiting("h1", "Hi")],
    ),
    (
        "an operator answered: the SLA counts from the reply, no notice",
        replace(OPEN, last_operator_reply_at_ms=OPENED + 800_000),
        POLICY,
        OPENED + 1_000_000,
        [],
    ),
    (
        "an operator answered long ago",
        replace(OPEN, last_operator_reply_at_ms=OPENED + 800_000),
        POLICY,
        OPENED + 1_100_000,
        [SlaBreach("h1", 300_000)],
    ),
    (
        "no notice configured",
        OPEN,
        replace(POLICY, still_waiting_notice=None),
        OPENED + 900_000,
        [SlaBreach("h1", 900_000)],
    ),
    (
        "empty notice",
        OPEN,
        replace(POLICY, still_waiting_notice=""),
        OPENED + 900_000,
        [SlaBreach("h1", 900_000)],
    ),
    ("sla off", OPEN, replace(POLICY, sla_ms=0), OPENED + 800_000, []),
    (
        "notice off",
        OPEN,
        replace(POLICY, still_waiting_after_ms=0),
        OPENED + 900_000,
        [SlaBreach("h1", 900_000)],
    ),
]


@pytest.mark.parametrize(
    ("handoff", "policy", "now_ms", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_sla_actions(
    handoff: Handoff, policy: HandoffPolicy, now_ms: int, expected: list[SlaAction]
) -> None:
    assert sla_actions(handoff, policy, now_ms) == expected


def test_waiting_since_is_the_later_of_the_opening_and_the_last_operator_reply() -> None:
    assert waiting_since_ms(OPEN) == OPENED
    assert waiting_since_ms(replace(OPEN, last_operator_reply_at_ms=OPENED + 7)) == OPENED + 7
