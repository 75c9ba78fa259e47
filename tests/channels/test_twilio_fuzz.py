"""Signed Twilio webhooks of any shape (hypothesis): the real app on a SQLite file answers
each with less than 500, and stores nothing when it answers 4xx. The forms start from
Twilio's documented shapes, then fields are dropped, replaced by odd values (long, empty,
non-ASCII, numbers where SIDs go, repeated) or added; every one is correctly signed."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acf.channels.twilio.signature import signature
from acf.entrypoints.http.context import ApiSettings
from tests.channels.fake_twilio import FakeTwilio, fake_twilio
from tests.channels.stored_rows import post_and_check
from tests.channels.test_twilio_webhook import PATH, PUBLIC, STATUS_PATH, twilio_config
from tests.channels.twilio_payloads import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OUR_NUMBER,
    OUR_WHATSAPP,
    sid,
    sms,
    status,
    whatsapp,
)
from tests.http.conftest import Api, serve_api

FIELDS = [
    "MessageSid",
    "AccountSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MediaUrl0",
    "MediaContentType0",
    "MediaUrl1",
    "WaId",
    "ProfileName",
    "ButtonPayload",
    "ButtonText",
    "MessagingServiceSid",
    "MessageStatus",
    "ErrorCode",
]
ODD_VALUES = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=2000),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "11",
            "9223372036854775808",
            ACCOUNT_SID,
            "AC" + "f" * 32,
            sid(7),
            "SM123",
            OUR_NUMBER,
            f"whatsapp:{OUR_WHATSAPP}",
            "whatsapp:+14158675310",
            "whatsapp:",
            "+",
            "x" * 1601,
            "https://api.twilio.com/media/ME1",
            "delivered",
            "failed",
            "\x00",
            "\ud7ff\ue000",
        ]
    ),
)
BASES = st.sampled_from(["sms", "whatsapp", "status"])


@st.composite
def forms(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """A path and a form: a documented shape, then mutated."""
    base = draw(BASES)
    n = draw(st.integers(min_value=1, max_value=10**6))
    shape = {
        "sms": sms(sid(n), "hello"),
        "whatsapp": whatsapp(sid(n), "hello"),
        "status": status(sid(n), "delivered"),
    }[base]
    fields = list(shape.items())
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        action = draw(st.sampled_from(["drop", "replace", "add", "repeat"]))
        name = draw(st.sampled_from(FIELDS) | st.text(min_size=1, max_size=12))
        if action == "drop":
            fields = [(k, v) for k, v in fields if k != name]
        elif action == "replace":
            fields = [(k, v) for k, v in fields if k != name] + [(name, draw(ODD_VALUES))]
        else:
            fields.append((name, draw(ODD_VALUES)))
    return (STATUS_PATH if base == "status" else PATH), fields


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
async def fuzz_api(
    tmp_path: Path, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    body = twilio_config(twilio.url)
    for tenant in ("acme", "globex"):
        body["tenants"][tenant]["limits"]["accepted_messages"] = "100000/second"  # type: ignore[index]
    async for served in serve_api(tmp_path, body, ApiSettings(max_webhook_bytes=64 * 1024)):
        yield served


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=forms())
async def test_no_signed_form_gets_a_5xx_or_stores_anything_on_a_4xx(
    fuzz_api: Api, tmp_path: Path, case: tuple[str, list[tuple[str, str]]]
) -> None:
    path, fields = case
    send = lambda: post_fields(fuzz_api, path, fields)  # noqa: E731
    await post_and_check(tmp_path / "data", send, lambda _: (0, 1), fields)


async def post_fields(api: Api, path: str, fields: list[tuple[str, str]]) -> httpx.Response:
    """A form whose names may repeat (a dict would hide a repeat), signed as Twilio does."""
    body = urlencode(fields)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
        "X-Twilio-Signature": signature(f"{PUBLIC}{path}", fields, AUTH_TOKEN),
    }
    async with api.client(None) as client:
        return await client.post(path, content=body, headers=headers)
