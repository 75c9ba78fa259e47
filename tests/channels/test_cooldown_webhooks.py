"""A cool-down loses nothing (docs/channels.md, "Rates: 429 or hold"): a customer flooding a
signed Twilio webhook past the firewall's per-minute limit gets every message acknowledged
(200, never a 429) and stored; the session goes into cool-down once, the customer gets ONE
notice through the provider, the messages after it are stored held, and the agent does not
answer while the session is held.

Over real HTTP: the service on a SQLite file, uvicorn on loopback, replies to the fake
Twilio Messages API on loopback. The SMS window is fixed at 2 s after the last message, so
no turn can commit between the flood's messages: whatever the agent would say comes after
the cool-down started.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from acf.channels.twilio.routes import EMPTY_TWIML
from acf.domain.modes import SessionMode
from acf.entrypoints.http.context import ApiSettings
from tests.channels import test_twilio_webhook as twilio
from tests.channels.fake_twilio import FakeTwilio, fake_twilio
from tests.channels.stored_rows import message_count
from tests.channels.twilio_payloads import AUTH_TOKEN, CUSTOMER, sid, sms
from tests.http.conftest import Api, serve_api

PER_MINUTE = 3
FLOOD = 8
NOTICE = "Paused: your messages are saved and will be answered."
WINDOW_MS = 2000


def flood_config(twilio_url: str) -> dict[str, Any]:
    body = twilio.twilio_config(twilio_url)
    acme = body["tenants"]["acme"]
    acme["channels"]["sms"] = {"mode": "fixed", "window_ms": WINDOW_MS, "max_window_ms": 10_000}
    acme["firewall"] = {
        "channels": {"sms": {"per_minute": PER_MINUTE, "per_day": 1000}},
        "notice": NOTICE,
        "cooldown_s": 600,
    }
    return body


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
async def api(
    tmp_path: Path, fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    settings = ApiSettings(max_webhook_bytes=64 * 1024)
    async for served in serve_api(tmp_path, flood_config(fake.url), settings):
        yield served


async def test_a_flood_is_stored_held_and_noticed_once_without_an_agent_reply(
    tmp_path: Path, api: Api, fake: FakeTwilio
) -> None:
    answers = [await twilio.post(api, sms(sid(n), f"message number {n}")) for n in range(FLOOD)]
    for answer in answers:
        assert (answer.status_code, answer.text) == (200, EMPTY_TWIML)
    retry = await twilio.post(api, sms(sid(FLOOD - 1), f"message number {FLOOD - 1}"))
    assert retry.status_code == 200  # Twilio's retry of a held message: a duplicate
    assert message_count(tmp_path / "data") == FLOOD

    # ONE cool-down, one notice through the provider.
    [notice] = await twilio.requests_at(fake, 1)
    assert (notice.field("Body"), notice.field("To")) == (NOTICE, CUSTOMER)
    started = await twilio.events_of(api, "abuse.cooldown_started")
    assert len(started) == 1
    suspected = await twilio.events_of(api, "abuse.suspected")
    assert suspected and suspected[0]["data"]["detector"] == "flood"

    # The messages after the cool-down started are stored held; none before it.
    received = sorted(
        await twilio.events_of(api, "message.received"), key=lambda e: e["data"]["seq"]
    )
    held = [e["data"].get("held") for e in received]
    assert held[: PER_MINUTE + 1] == [None] * (PER_MINUTE + 1)  # the 4th trips the limit
    assert held[PER_MINUTE + 1 :] == ["cooldown"] * (FLOOD - PER_MINUTE - 1)

    # No agent reply while held: past the window (when a turn would have answered), the
    # notice is still the only message sent and nothing was consumed.
    await asyncio.sleep(2 * WINDOW_MS / 1000)
    assert len(fake.requests()) == 1
    [session] = await twilio.sessions_of(api, CUSTOMER)
    record = await api.service.store.sessions.get("acme", session["session_id"])
    assert record is not None and record.mode == SessionMode.COOLDOWN
    assert session["consumed_seq"] == 0 and session["last_seq"] == FLOOD
    assert [r["text"] for r in session["replies"]] == [NOTICE]
    assert sorted(m["text"] for m in session["messages"]) == sorted(
        f"message number {n}" for n in range(FLOOD)
    )
