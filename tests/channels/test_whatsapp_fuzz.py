"""Property: whatever a correctly signed WhatsApp webhook carries, the answer is never a
5xx, a 4xx stores nothing, and a 200 stores exactly the messages it counts as accepted.
Bodies are random JSON and mutated envelopes, signed with the app secret, posted over real
HTTP to the service on a SQLite file."""

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acf.entrypoints.http.context import ApiSettings
from tests.channels.fake_graph import FakeGraph, fake_graph
from tests.channels.json_strategies import EDGE_INTS, json_values, mutated, shaped
from tests.channels.payloads import PHONE_NUMBER_ID
from tests.channels.stored_rows import post_and_check
from tests.channels.test_whatsapp_webhook import post, whatsapp_config
from tests.http.conftest import Api, serve_api

NOW = int(time.time())
TYPES = ("text", "interactive", "button", "image", "document", "reaction", "unsupported")

recent = st.integers(NOW - 7 * 86400, NOW)
timestamps = st.one_of(
    recent.map(str), recent.map(str), recent, st.sampled_from(EDGE_INTS).map(str)
)
wamids = st.integers(0, 10**6).map(lambda n: f"wamid.{n}")
reply = shaped({"id": st.sampled_from(["yes", "no"])}, {"title": st.text(max_size=20)})
media = shaped(
    {"id": st.text(min_size=1, max_size=8)}, {"mime_type": st.text(), "caption": st.text()}
)
message = shaped(
    {
        "from": st.sampled_from(["16505551234", "447700900123"]),
        "id": wamids,
        "timestamp": timestamps,
        "type": st.sampled_from(TYPES),
    },
    {
        "text": shaped({"body": st.text(min_size=1, max_size=40)}, {}),
        "interactive": shaped(
            {"type": st.sampled_from(["button_reply", "list_reply"])},
            {"button_reply": reply, "list_reply": reply},
        ),
        "button": shaped({}, {"payload": st.text(max_size=10), "text": st.text(max_size=10)}),
        "image": media,
        "document": media,
    },
)
status = shaped(
    {
        "id": wamids,
        "status": st.sampled_from(["sent", "delivered", "read", "failed"]),
        "timestamp": timestamps,
    },
    {"errors": st.lists(shaped({}, {"code": st.integers(), "title": st.text()}), max_size=2)},
)
contact = shaped(
    {"wa_id": st.sampled_from(["16505551234", "447700900123"])},
    {"profile": shaped({}, {"name": st.text(max_size=20)})},
)
change_value = shaped(
    {"metadata": shaped({"phone_number_id": st.sampled_from([PHONE_NUMBER_ID] * 3 + ["999"])}, {})},
    {
        "contacts": st.lists(contact, max_size=2),
        "messages": st.lists(message, min_size=1, max_size=3),
        "statuses": st.lists(status, max_size=2),
    },
)
envelopes = shaped(
    {
        "object": st.just("whatsapp_business_account"),
        "entry": st.lists(
            shaped(
                {"changes": st.lists(shaped({"value": change_value}, {}), min_size=1, max_size=2)},
                {},
            ),
            min_size=1,
            max_size=2,
        ),
    },
    {},
)
documented = mutated(envelopes)
bodies = st.one_of(documented, documented, documented, json_values, st.binary(max_size=40))


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with fake_graph() as server:
        yield server


@pytest.fixture
async def wa_api(
    tmp_path: Path, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    monkeypatch.setenv("WA_APP_SECRET", "wa-app-secret")
    monkeypatch.setenv("WA_VERIFY_TOKEN", "verify-me")
    monkeypatch.setenv("WA_ACCESS_TOKEN", "EAAG-token")
    body = whatsapp_config(graph.url)
    body["tenants"]["acme"]["limits"] = {"accepted_messages": "100000/second"}  # type: ignore[index]
    async for served in serve_api(tmp_path, body, ApiSettings(max_webhook_bytes=64 * 1024)):
        yield served


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
async def test_a_signed_webhook_never_gets_a_5xx_and_a_4xx_stores_nothing(
    wa_api: Api, tmp_path: Path, body: Any
) -> None:
    await post_and_check(
        tmp_path / "data", lambda: post(wa_api, body), lambda a: {a.json()["accepted"]}, body
    )
