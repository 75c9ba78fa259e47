"""``X-Twilio-Signature``: Twilio's documented worked example, and what must break it."""

import base64
import hashlib
import hmac

import pytest

from acf.channels.twilio.signature import signature, signature_ok, url_spellings

URL = "https://example.com/myapp.php?foo=1&bar=2"
PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675310"),
    ("Digits", "1234"),
    ("From", "+14158675310"),
    ("To", "+18005551212"),
]
TOKEN = "12345"
DOCUMENTED = "L/OH5YylLD5NRKLltdqwSvS0BnU="


def test_the_documented_worked_example() -> None:
    assert signature(URL, PARAMS, TOKEN) == DOCUMENTED
    assert signature_ok(URL, PARAMS, DOCUMENTED, TOKEN)


def test_the_order_the_fields_arrive_in_does_not_matter() -> None:
    assert signature(URL, list(reversed(PARAMS)), TOKEN) == DOCUMENTED


def test_fields_are_sorted_by_name_case_sensitively() -> None:
    data = "https://x.test/hook" + "B2" + "a3" + "b1"  # "B" < "a" < "b" in code points
    expected = base64.b64encode(hmac.new(b"t", data.encode(), hashlib.sha1).digest()).decode()
    assert signature("https://x.test/hook", [("b", "1"), ("a", "3"), ("B", "2")], "t") == expected


@pytest.mark.parametrize(
    ("url", "params", "header", "token"),
    [
        (URL, PARAMS, None, TOKEN),  # no header
        (URL, PARAMS, "", TOKEN),
        (URL, PARAMS, DOCUMENTED, "54321"),  # another account's token
        (URL, [*PARAMS, ("Extra", "1")], DOCUMENTED, TOKEN),  # every field received is signed
        (URL, [*PARAMS, ("Extra", "")], DOCUMENTED, TOKEN),  # blank ones too
        (URL, [(k, v + " ") for k, v in PARAMS], DOCUMENTED, TOKEN),  # values are not trimmed
        (URL, PARAMS[1:], DOCUMENTED, TOKEN),  # a field dropped
        ("https://example.com/myapp.php?foo=1&bar=3", PARAMS, DOCUMENTED, TOKEN),  # query
        ("https://example.com/myapp.php/?foo=1&bar=2", PARAMS, DOCUMENTED, TOKEN),  # slash
        ("https://example.com:8443/myapp.php?foo=1&bar=2", PARAMS, DOCUMENTED, TOKEN),  # port
        ("http://example.com/myapp.php?foo=1&bar=2", PARAMS, DOCUMENTED, TOKEN),  # scheme
        (URL, PARAMS, DOCUMENTED.lower(), TOKEN),  # base64 is case-sensitive
    ],
)
def test_anything_but_the_signed_request_fails(
    url: str, params: list[tuple[str, str]], header: str | None, token: str
) -> None:
    assert not signature_ok(url, params, header, token)


def test_whitespace_around_the_header_is_ignored() -> None:
    assert signature_ok(URL, PARAMS, f" {DOCUMENTED}\t", TOKEN)


def test_a_default_port_shown_or_hidden_still_matches() -> None:
    with_port = "https://example.com:443/myapp.php?foo=1&bar=2"
    assert signature_ok(with_port, PARAMS, DOCUMENTED, TOKEN)
    signed_with_port = signature(with_port, PARAMS, TOKEN)
    assert signature_ok(URL, PARAMS, signed_with_port, TOKEN)


@pytest.mark.parametrize(
    ("url", "spellings"),
    [
        ("https://a.test/x?y=1", ["https://a.test/x?y=1", "https://a.test:443/x?y=1"]),
        ("https://a.test:443/x", ["https://a.test:443/x", "https://a.test/x"]),
        ("http://a.test/", ["http://a.test/", "http://a.test:80/"]),
        ("http://127.0.0.1:8000/x", ["http://127.0.0.1:8000/x"]),  # kept as requested
        ("https://a.test:80/x", ["https://a.test:80/x"]),  # not https's default
        ("https://a.test:99999/x", ["https://a.test:99999/x"]),  # not a port
    ],
)
def test_url_spellings(url: str, spellings: list[str]) -> None:
    assert url_spellings(url) == spellings
