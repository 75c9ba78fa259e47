"""The fallback ladder's decision (``acf.domain.fallback.next_route``), as a table."""

import pytest

from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.fallback import LADDER_EXHAUSTED, NO_LADDER, Route, next_route
from acf.domain.policy import AccumulationMode, ChannelPolicy

WA, SMS, MAIL, TG, WEB = (
    Channel.WHATSAPP,
    Channel.SMS,
    Channel.EMAIL,
    Channel.TELEGRAM,
    Channel.WEB,
)
LINKED = {WA: "15550001", SMS: "+15550001", MAIL: "ana@example.com"}

CASES = [
    # failed, ladder, tried, linked, reachable -> route, reason
    ("no ladder", WA, (), (), LINKED, None, None, NO_LADDER),
    ("first rung", WA, (SMS, MAIL), (), LINKED, None, Route(SMS, "+15550001"), "whatsapp"),
    ("order kept", WA, (MAIL, SMS), (), LINKED, None, Route(MAIL, "ana@example.com"), "whatsapp"),
    ("skips unlinked", WA, (TG, SMS), (), LINKED, None, Route(SMS, "+15550001"), "whatsapp"),
    ("skips unreachable", WA, (SMS, MAIL), (), LINKED, {MAIL}, Route(MAIL, LINKED[MAIL]), "wh"),
    ("next after a copy", SMS, (SMS, MAIL), (WA,), LINKED, None, Route(MAIL, LINKED[MAIL]), "sms"),
    ("never back", SMS, (SMS, WA), (WA,), LINKED, None, None, LADDER_EXHAUSTED),
    ("failed channel on ladder", WA, (WA,), (), LINKED, None, None, LADDER_EXHAUSTED),
    ("nothing linked", WA, (SMS,), (), {}, None, None, "no linked address on sms"),
    (
        "every reason said",
        WA,
        (SMS, MAIL),
        (),
        {WA: "1"},
        {WA, MAIL},
        None,
        "no sender for sms; no linked address on email",
    ),
    ("web is a rung too", WA, (WEB,), (), {WEB: "ana"}, None, Route(WEB, "ana"), "whatsapp"),
]


@pytest.mark.parametrize(
    ("failed", "ladder", "tried", "linked", "reachable", "route", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_next_route(
    failed: Channel,
    ladder: tuple[Channel, ...],
    tried: tuple[Channel, ...],
    linked: dict[Channel, str],
    reachable: set[Channel] | None,
    route: Route | None,
    reason: str,
) -> None:
    decision = next_route(failed, ladder, tried, linked, reachable)
    assert decision.route == route
    assert reason in decision.reason


def test_route_payload_and_validation() -> None:
    assert Route(SMS, "+15550001").as_payload() == {"channel": "sms", "address": "+15550001"}
    assert Route("sms", "+1") == Route(SMS, "+1")  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="unknown channel"):
        Route("fax", "+1")  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="address"):
        Route(SMS, "")
    with pytest.raises(InvalidValue, match="control character"):
        Route(SMS, "+1\n2")


def test_a_policy_names_each_fallback_channel_once() -> None:
    assert ChannelPolicy(AccumulationMode.OFF, fallback=(SMS, MAIL)).fallback == (SMS, MAIL)
    with pytest.raises(InvalidValue, match="fallback names a channel twice"):
        ChannelPolicy(AccumulationMode.OFF, fallback=(SMS, SMS))
