"""Signed inbound mail of any shape (hypothesis): the real app on a SQLite file answers each
Mailgun and SendGrid post with less than 500, and stores nothing when it answers 4xx. The
forms start from the providers' documented shapes, then fields are dropped, replaced by
odd values (random JSON where JSON goes, long, empty, non-ASCII, raw bytes in other
charsets) or added; every Mailgun post is correctly signed (a fresh token each), every
SendGrid post carries the right basic auth; both are sent urlencoded or multipart."""

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acf.entrypoints.http.context import ApiSettings
from tests.channels.email_payloads import mailgun, sendgrid, sign
from tests.channels.smtp_sink import SmtpSink, smtp_sink
from tests.channels.stored_rows import post_and_check
from tests.channels.test_email_webhook import MAILGUN, PARSE_AUTH, SENDGRID, email_config
from tests.http.conftest import Api, serve_api

JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
TEXT = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=25_000),
    st.sampled_from(
        [
            "",
            "not an address",
            "<>",
            "a@b",
            "Ann <ANN@EXAMPLE.COM>",
            "support@acme.example",
            "help@globex.example",
            "x" * 300 + "@example.com",
            "<" + "i" * 1200 + "@mail>",
            "Mon, 09 Jun 9999 10:59:43 +0000",
            "Mon, 99 Foo 0 99:99:99",
            "\x00\x01",
            "On Mon, 9 Jun 2025, Ann wrote:\n> quoted",
            "<p>hi<blockquote>old</blockquote></p>",
            "=?utf-8?q?caf=C3=A9?=",
        ]
    ),
)
JSON_TEXT = JSON.map(json.dumps) | st.just("{") | st.just('[["From"]]')
MAILGUN_FIELDS = [
    "recipient",
    "sender",
    "from",
    "subject",
    "body-plain",
    "stripped-text",
    "body-html",
    "message-headers",
]
SENDGRID_FIELDS = ["headers", "from", "to", "subject", "text", "html", "envelope", "charsets"]
JSON_FIELDS = {"message-headers", "envelope", "charsets"}


@st.composite
def mutated(draw: st.DrawFn, fields: dict[str, str], names: list[str]) -> list[tuple[str, str]]:
    pairs = list(fields.items())
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        name = draw(st.sampled_from(names) | st.text(min_size=1, max_size=10))
        value = draw(JSON_TEXT if name in JSON_FIELDS else TEXT)
        if action != "add":
            pairs = [(k, v) for k, v in pairs if k != name]
        if action != "drop":
            pairs.append((name, value))
    return pairs


@st.composite
def mails(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]], bool, str | None]:
    """The route, the fields, whether to send them multipart, and a charset to encode
    the text fields in (bytes that may not be what the form says)."""
    n = draw(st.integers(min_value=0, max_value=10**9))
    provider = draw(st.sampled_from(["mailgun", "sendgrid"]))
    if provider == "mailgun":
        fields = mutated(mailgun(text="hello", message_id=f"<{n}@mail>"), MAILGUN_FIELDS)
    else:
        fields = mutated(sendgrid(message_id=f"<sg-{n}@mail>"), SENDGRID_FIELDS)
    pairs = draw(fields)
    multipart = draw(st.booleans())
    charset = draw(st.none() | st.sampled_from(["latin-1", "utf-16"])) if multipart else None
    return (MAILGUN if provider == "mailgun" else SENDGRID), pairs, multipart, charset


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[SmtpSink, int]]:
    with smtp_sink() as running:
        yield running


@pytest.fixture
async def fuzz_api(
    tmp_path: Path, sink: tuple[SmtpSink, int], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    monkeypatch.setenv("MAILGUN_SIGNING_KEY", "key-fuzz")
    monkeypatch.setenv("SENDGRID_PARSE_AUTH", PARSE_AUTH)
    body = email_config(sink[1], rate="100000/second")
    async for served in serve_api(tmp_path, body, ApiSettings(max_webhook_bytes=256 * 1024)):
        yield served


async def post(
    api: Api, path: str, pairs: list[tuple[str, str]], multipart: bool, charset: str | None
) -> httpx.Response:
    headers: dict[str, str] = {}
    if path == MAILGUN:
        stamp: dict[str, str] = {}
        sign(stamp, key="key-fuzz")
        pairs = [(k, v) for k, v in pairs if k not in stamp] + list(stamp.items())
    else:
        headers["Authorization"] = "Basic " + base64.b64encode(PARSE_AUTH.encode()).decode()
    async with api.client(None) as client:
        if not multipart:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return await client.post(path, content=urlencode(pairs), headers=headers)
        files = [(k, (None, v.encode(charset or "utf-8", "replace"))) for k, v in pairs]
        request = client.build_request("POST", path, files=files, headers=headers)
        return await client.send(request)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mails())
async def test_no_signed_mail_gets_a_5xx_or_stores_anything_on_a_4xx(
    fuzz_api: Api, tmp_path: Path, case: tuple[str, list[tuple[str, str]], bool, str | None]
) -> None:
    path, pairs, multipart, charset = case
    send = lambda: post(fuzz_api, path, pairs, multipart, charset)  # noqa: E731
    await post_and_check(tmp_path / "data", send, lambda _: (0, 1), case)
