import pytest

from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.session_key import SessionKey


@pytest.mark.parametrize(
    "customer",
    ["whatsapp:+15550001", "a/b", "100%", "tg:42:7", "ünïcode", "x" * 256],
)
def test_path_round_trips_ids_with_separators(customer: str) -> None:
    key = SessionKey("t:1", "agent/1", customer, Channel.SMS)
    assert SessionKey.from_path(key.to_path()) == key
    assert key.to_path().count("/") == 3


def test_distinct_keys_never_share_a_path() -> None:
    a = SessionKey("t", "a:b", "c", Channel.WEB)
    b = SessionKey("t", "a", "b:c", Channel.WEB)
    assert a.to_path() != b.to_path()


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (("", "a", "c", "web"), "tenant must not be empty"),
        (("t", "a", "x" * 257, "web"), "customer is longer"),
        (("t", "a\n", "c", "web"), "agent contains a control character"),
        (("t", "a", "c", "fax"), "unknown channel 'fax'"),
    ],
)
def test_bad_parts_are_refused(parts: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        SessionKey(*parts)  # type: ignore[arg-type]


def test_channel_given_as_text_is_normalised() -> None:
    assert SessionKey("t", "a", "c", "email").channel is Channel.EMAIL  # type: ignore[arg-type]
