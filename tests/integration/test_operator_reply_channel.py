"""An operator's reply over a real channel: the service on a SQLite file, uvicorn on
loopback, Twilio's webhooks signed as Twilio signs them and its Messages API faked on
loopback.

A customer's SMS session is handed off: the agent goes quiet (the customer's next messages
are stored, not answered), the customer gets the tenant's notice once, and an operator's
reply goes out as an agent's would: through the outbox and the relay, formatted for SMS
(its buttons become numbered options), with Twilio's status callbacks moving its delivery
status. The reply is a HUMAN turn that consumed the messages it answered. The desk is driven
through the service as the HTTP routes drive it.
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from acf.domain.modes import SessionMode, TurnKind
from acf.domain.signals import DeliveryStatus
from acf.domain.turns import TurnPhase
from acf.entrypoints.http.context import ApiSettings
from acf.ports.event_store import EventQuery
from acf.ports.handoffs import Operator
from acf.ports.session_store import SessionFilter, SessionRecord
from acf.service.operator_desk import OperatorDesk
from tests.channels.fake_twilio import FakeTwilio, fake_twilio, message_sid
from tests.channels.test_twilio_webhook import post, requests_at, twilio_config
from tests.channels.twilio_payloads import AUTH_TOKEN, CUSTOMER, sid, sms, status
from tests.http.conftest import Api, serve_api

ALICE = Operator("key-alice", "Alice")
TENANT = "acme"


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with fake_twilio() as server:
        yield server


@pytest.fixture
async def api(
    tmp_path: Path, twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    settings = ApiSettings(max_webhook_bytes=64 * 1024)
    async for served in serve_api(tmp_path, twilio_config(twilio.url), settings):
        yield served


def desk(api: Api) -> OperatorDesk:
    service = api.service
    assert service.wakeups is not None
    return OperatorDesk(service.store, service.clock, service.wakeups.notify, service.people)


async def the_session(api: Api) -> SessionRecord:
    (session,) = await api.service.store.sessions.list_sessions(
        TENANT, SessionFilter(customer=CUSTOMER)
    )
    return session


async def texted(api: Api, n: int, body: str) -> None:
    answer = await post(api, sms(sid(n), body))
    assert answer.status_code == 200, answer.text


async def test_an_operator_reply_goes_out_by_sms_with_its_statuses(
    api: Api, twilio: FakeTwilio
) -> None:
    store = api.service.store
    await texted(api, 1, "hello")
    (agent,) = await requests_at(twilio, 1)
    assert agent.field("Body") == "Hi from acme"
    session = await the_session(api)
    sid_ = session.session_id

    notice = api.service.people(TENANT).handoff.notice
    await desk(api).handoff(TENANT, sid_, "asked for a person", ALICE)
    await desk(api).handoff(TENANT, sid_, "asked again", ALICE)  # no second notice
    await texted(api, 2, "hello, anyone?")
    await texted(api, 3, "my order 1001 is late")
    session = await the_session(api)
    assert (session.mode, session.last_seq) == (SessionMode.HUMAN, 3)

    await desk(api).claim(TENANT, sid_, ALICE)
    answer = await desk(api).reply(
        TENANT, sid_, ALICE, "Alice here: shall I refund it?", buttons=["Yes", "No"]
    )
    sent = await requests_at(twilio, 3)
    assert [r.field("Body") for r in sent] == [
        "Hi from acme",
        notice,
        "Alice here: shall I refund it?\n\n1. Yes\n2. No",
    ]
    assert sent[2].field("To") == CUSTOMER

    # The HUMAN turn answered both held messages: no agent turn took them meanwhile.
    human = await store.turns.get(TENANT, answer.turn_id)
    assert human is not None
    assert (human.kind, human.phase, human.from_seq, human.to_seq) == (
        TurnKind.HUMAN,
        TurnPhase.COMMITTED,
        1,
        3,
    )
    session = await the_session(api)
    assert (session.consumed_seq, session.last_seq) == (3, 3)

    # Twilio's callbacks move the reply's status, as they move an agent's.
    (outbox_id,) = answer.outbox_ids
    callback = sent[2].field("StatusCallback")
    path = callback.removeprefix("https://acf.example.com")
    for reported in ("sent", "delivered"):
        update = await post(api, status(message_sid(3), reported), path=path, signed_url=callback)
        assert update.status_code == 200, update.text
    row = await store.outbox.get(TENANT, outbox_id)
    assert row is not None
    assert (row.status, row.provider_message_id) == (DeliveryStatus.DELIVERED, message_sid(3))
    assert row.payload["author"] == "operator"
    statuses = await store.events.query(
        TENANT, EventQuery(session_id=sid_, kinds=(), limit=1_000, in_commit_order=False)
    )
    kinds = [(e.kind.value, e.correlation.turn_id) for e in statuses]
    assert ("operator.replied", answer.turn_id) in kinds
    assert ("response.status", answer.turn_id) in kinds
