"""Table tests of the small domain rules: phases, statuses, policies, messages."""

import pytest

from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import MAX_TEXT_LENGTH, ButtonReply, NewMessage
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, AccumulationMode, ChannelPolicy
from acf.domain.session_key import SessionKey
from acf.domain.signals import DeliveryStatus as S
from acf.domain.turns import TurnPhase as P

KEY = SessionKey("t", "a", "c", Channel.WEB)


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (P.ACCUMULATING, P.RUNNING, True),
        (P.ACCUMULATING, P.SUPERSEDED, True),
        (P.ACCUMULATING, P.COMMITTED, False),
        (P.RUNNING, P.COMMITTED, True),
        (P.RUNNING, P.SUPERSEDED, True),
        (P.RUNNING, P.FAILED, True),
        (P.RUNNING, P.RUNNING, True),  # a recovery re-runs with attempt + 1
        (P.COMMITTED, P.RUNNING, False),
        (P.SUPERSEDED, P.RUNNING, False),
        (P.FAILED, P.COMMITTED, False),
    ],
)
def test_phase_arrows(current: P, target: P, allowed: bool) -> None:
    assert current.can_move_to(target) is allowed


def test_terminal_phases() -> None:
    assert {p for p in P if p.is_terminal} == {P.COMMITTED, P.SUPERSEDED, P.FAILED}


@pytest.mark.parametrize(
    ("current", "new", "applies"),
    [
        (S.PENDING, S.SENT, True),
        (S.SENT, S.DELIVERED, True),
        (S.DELIVERED, S.READ, True),
        (S.SENT, S.READ, True),
        (S.READ, S.DELIVERED, False),
        (S.DELIVERED, S.SENT, False),
        (S.SENT, S.SENT, False),
        (S.DELIVERED, S.FAILED, True),
        (S.FAILED, S.READ, False),
        (S.FAILED, S.FAILED, False),
    ],
)
def test_statuses_are_monotonic(current: S, new: S, applies: bool) -> None:
    assert new.may_follow(current) is applies


def test_default_policies_match_design() -> None:
    wa = DEFAULT_CHANNEL_POLICIES[Channel.WHATSAPP]
    assert (wa.mode, wa.window_ms, wa.min_window_ms, wa.max_window_ms) == (
        AccumulationMode.ADAPTIVE,
        1200,
        400,
        4000,
    )
    web = DEFAULT_CHANNEL_POLICIES[Channel.WEB]
    assert (web.window_ms, web.min_window_ms, web.max_window_ms) == (600, 250, 3000)
    sms = DEFAULT_CHANNEL_POLICIES[Channel.SMS]
    assert (sms.window_ms, sms.min_window_ms, sms.max_window_ms) == (1500, 500, 5000)
    assert DEFAULT_CHANNEL_POLICIES[Channel.TELEGRAM].window_ms == 1000
    assert DEFAULT_CHANNEL_POLICIES[Channel.EMAIL].mode is AccumulationMode.OFF
    assert DEFAULT_CHANNEL_POLICIES[Channel.VOICE].mode is AccumulationMode.OFF
    assert set(DEFAULT_CHANNEL_POLICIES) == set(Channel)


def test_policy_windows_must_be_ordered() -> None:
    with pytest.raises(InvalidValue, match="min_window_ms <= window_ms <= max_window_ms"):
        ChannelPolicy(AccumulationMode.FIXED, window_ms=500, min_window_ms=600, max_window_ms=900)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"provider_message_id": ""}, "provider_message_id must not be empty"),
        ({"provider_message_id": "x" * 300, "text": "hi"}, "longer than 256"),
        ({"provider_message_id": "p", "text": "x" * (MAX_TEXT_LENGTH + 1)}, "the limit is"),
        ({"provider_message_id": "p", "text": "   "}, "needs text, a button reply or media"),
    ],
)
def test_bad_messages(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        NewMessage(key=KEY, **kwargs)  # type: ignore[arg-type]


def test_button_reply_alone_is_a_message() -> None:
    assert NewMessage(key=KEY, provider_message_id="p", button=ButtonReply("yes")).button


def test_retry_backoff_doubles_up_to_its_cap() -> None:
    from acf.domain.agent_settings import AgentSettings

    s = AgentSettings(retry_backoff_ms=500, max_retry_backoff_ms=3_000)
    assert [s.backoff_ms(n) for n in (1, 2, 3, 4, 30)] == [500, 1_000, 2_000, 3_000, 3_000]
