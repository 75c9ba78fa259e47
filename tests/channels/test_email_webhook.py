"""The email routes over real HTTP: the service on a SQLite file, uvicorn on loopback,
replies through a real SMTP server on loopback. One mail, one turn, one reply, threaded;
the customer's answer to our mail joins their session from any address."""

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from acf.domain.messages import MAX_TEXT_LENGTH
from acf.entrypoints.http.context import ApiSettings
from tests.channels.email_payloads import ADDRESS, SIGNING_KEY, mailgun, sendgrid, sign
from tests.channels.smtp_sink import SmtpSink, free_port, smtp_sink
from tests.http.conftest import Api, config, serve_api, settled

MAILGUN = "/v1/channels/email/acme/mailgun"
SENDGRID = "/v1/channels/email/acme/sendgrid"
PARSE_AUTH = "parse:s3cret"
ATTACHMENT = {"attachment1": ("invoice.txt", b"not taken", "text/plain")}


def email_config(smtp_port: int, rate: str = "50/second") -> dict[str, Any]:
    body = config(rate)
    tenants: Any = body["tenants"]
    tenants["acme"]["email"] = {
        "agent": "support",
        "address": ADDRESS,
        "display_name": "Acme Support",
        "inbound": {
            "mailgun": {"signing_key": "${MAILGUN_SIGNING_KEY}"},
            "sendgrid": {"basic_auth": "${SENDGRID_PARSE_AUTH}"},
        },
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "starttls": False, "timeout_s": 5},
    }
    tenants["globex"]["email"] = {
        "agent": "support",
        "address": "help@globex.example",
        "inbound": {"mailgun": {"signing_key": "${MAILGUN_SIGNING_KEY}"}},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "starttls": False},
    }
    return body


@asynccontextmanager
async def email_api(tmp_path: Path, smtp_port: int, rate: str = "50/second") -> AsyncIterator[Api]:
    settings = ApiSettings(max_webhook_bytes=64 * 1024)
    async for served in serve_api(tmp_path, email_config(smtp_port, rate), settings):
        yield served


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILGUN_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("SENDGRID_PARSE_AUTH", PARSE_AUTH)


@pytest.fixture
def sink() -> Iterator[tuple[SmtpSink, int]]:
    with smtp_sink() as running:
        yield running


@pytest.fixture
async def api(tmp_path: Path, sink: tuple[SmtpSink, int]) -> AsyncIterator[Api]:
    async with email_api(tmp_path, sink[1]) as served:
        yield served


async def post_mailgun(api: Api, fields: dict[str, str], path: str = MAILGUN) -> httpx.Response:
    async with api.client(None) as client:
        return await client.post(path, data=fields)


async def post_sendgrid(
    api: Api, fields: dict[str, str], auth: str | None = PARSE_AUTH
) -> httpx.Response:
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    attachment = {"attachment1": ("invoice.txt", b"not taken", "text/plain")}
    async with api.client(None) as client:
        return await client.post(SENDGRID, data=fields, files=attachment, headers=headers)


def signed(fields: dict[str, str], **options: Any) -> dict[str, str]:
    sign(fields, **options)
    return fields


async def sessions_of(api: Api, customer: str) -> list[dict[str, Any]]:
    async with api.client("acme") as client:
        listed = (await client.get("/v1/sessions", params={"customer": customer})).json()
        return [await settled(client, s["session_id"]) for s in listed["items"]]


async def delivered_ids(api: Api) -> list[str]:
    """The provider ids the relay recorded for acme's sent replies (our Message-IDs)."""
    async with api.client("acme") as client:
        answer = await client.get("/v1/events", params={"kind": "response.delivered"})
    return [e["data"]["provider_message_id"] for e in answer.json()["items"]]


async def mails_at(sink: SmtpSink, count: int, timeout_s: float = 10.0) -> list[EmailMessage]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if len(sink.received()) >= count:
            break
        await asyncio.sleep(0.05)
    return sink.received()


async def test_a_mailgun_mail_posted_twice_is_stored_once_and_answered_once_threaded(
    api: Api, sink: tuple[SmtpSink, int]
) -> None:
    server, _port = sink
    form = signed(mailgun(text="hello", references="<older@mail.example>"))
    first, retry = await post_mailgun(api, form), await post_mailgun(api, form)
    assert first.status_code == 200, first.text
    assert (first.json()["accepted"], first.json()["duplicates"]) == (1, 0)
    assert (retry.json()["accepted"], retry.json()["duplicates"]) == (0, 1)
    [session] = await sessions_of(api, "ann@example.com")
    assert [m["text"] for m in session["messages"]] == ["hello"]
    assert session["channel"] == "email"
    assert len(session["replies"]) == 1
    [mail] = await mails_at(server, 1)
    assert mail["To"] == "ann@example.com"
    assert mail["From"] == "Acme Support <support@acme.example>"
    assert mail["Subject"] == "Re: Order 1001"
    assert mail["In-Reply-To"] == "<CAF=abc123@mail.gmail.com>"
    assert mail["References"] == "<older@mail.example> <CAF=abc123@mail.gmail.com>"
    assert mail["Message-ID"].endswith("@acme.example>")
    assert await delivered_ids(api) == [mail["Message-ID"]]
    assert mail.get_content().strip() == "Hi from acme"


async def link_addresses(api: Api, *addresses: str) -> None:
    identities = [{"channel": "email", "address": a} for a in addresses]
    async with api.client("acme") as client:
        answer = await client.put("/v1/customers/ann/identities", json={"identities": identities})
    assert answer.status_code == 200, answer.text


async def test_the_customers_answer_from_another_address_joins_their_session(
    api: Api, sink: tuple[SmtpSink, int]
) -> None:
    server, _port = sink
    await link_addresses(api, "ann@example.com", "ann.lee@work.example")
    await post_mailgun(api, signed(mailgun(text="hello")))
    [ours] = await mails_at(server, 1)
    answer = mailgun(
        text="hello again",
        message_id="<reply-1@work.example>",
        sender="Ann Lee <ann.lee@work.example>",
        subject="Re: Order 1001",
        in_reply_to=ours["Message-ID"],
        references=f"<CAF=abc123@mail.gmail.com> {ours['Message-ID']}",
    )
    assert (await post_mailgun(api, signed(answer))).json()["accepted"] == 1
    [session] = await sessions_of(api, "ann@example.com")
    assert [m["text"] for m in session["messages"]] == ["hello", "hello again"]
    assert await sessions_of(api, "ann.lee@work.example") == []
    _first, second = await mails_at(server, 2)
    assert second["To"] == "ann@example.com"
    assert second["Subject"] == "Re: Order 1001"
    assert second["In-Reply-To"] == "<reply-1@work.example>"
    assert second["References"].split() == [
        "<CAF=abc123@mail.gmail.com>",
        ours["Message-ID"],
        "<reply-1@work.example>",
    ]


async def test_a_stranger_answering_the_thread_is_a_conversation_of_their_own(
    api: Api, sink: tuple[SmtpSink, int]
) -> None:
    server, _port = sink
    await post_mailgun(api, signed(mailgun(text="hello")))
    [ours] = await mails_at(server, 1)
    forwarded = mailgun(
        text="yes",
        message_id="<fwd-1@other.example>",
        sender="Bob <bob@other.example>",
        subject="Re: Order 1001",
        in_reply_to=ours["Message-ID"],
    )
    assert (await post_mailgun(api, signed(forwarded))).json()["accepted"] == 1
    [ann] = await sessions_of(api, "ann@example.com")
    assert [m["text"] for m in ann["messages"]] == ["hello"]  # Bob's "yes" is not Ann's
    [bob] = await sessions_of(api, "bob@other.example")
    assert [m["text"] for m in bob["messages"]] == ["yes"]
    _first, second = await mails_at(server, 2)
    assert second["To"] == "bob@other.example"


async def test_two_mails_get_two_replies(api: Api, sink: tuple[SmtpSink, int]) -> None:
    server, _port = sink
    one = signed(mailgun(text="hello", message_id="<one@mail.example>"))
    two = signed(mailgun(text="hello there", message_id="<two@mail.example>"))
    assert (await post_mailgun(api, one)).json()["accepted"] == 1
    assert (await post_mailgun(api, two)).json()["accepted"] == 1
    [session] = await sessions_of(api, "ann@example.com")
    assert len(session["replies"]) == 2  # email does not accumulate: one mail, one turn
    mails = await mails_at(server, 2)
    assert len(mails) == 2
    assert len({m["Message-ID"] for m in mails}) == 2


async def test_a_sendgrid_mail_gets_one_reply(api: Api, sink: tuple[SmtpSink, int]) -> None:
    server, _port = sink
    form = sendgrid(text="hello\n\nOn Mon, Acme wrote:\n> earlier")
    answer = await post_sendgrid(api, form)
    assert answer.status_code == 200, answer.text
    assert (await post_sendgrid(api, form)).json()["duplicates"] == 1
    [session] = await sessions_of(api, "bob@example.com")
    assert [m["text"] for m in session["messages"]] == ["hello"]
    [mail] = await mails_at(server, 1)
    assert (mail["To"], mail["Subject"]) == ("bob@example.com", "Re: Order 2002")
    assert mail["In-Reply-To"] == "<sg-1@mail.example.com>"


async def test_bad_credentials_are_refused_and_nothing_is_stored(api: Api) -> None:
    forged = signed(mailgun(text="hello"), key="not-the-signing-key")
    assert (await post_mailgun(api, forged)).status_code == 401
    stale = signed(mailgun(text="hello"), at=1_000_000_000)
    answer = await post_mailgun(api, stale)
    assert answer.status_code == 401 and "15 minutes" in answer.json()["message"]
    assert (await post_mailgun(api, mailgun(text="hello"))).status_code == 401  # unsigned
    assert (await post_sendgrid(api, sendgrid(), auth="parse:wrong")).status_code == 401
    assert (await post_sendgrid(api, sendgrid(), auth=None)).status_code == 401
    assert await sessions_of(api, "ann@example.com") == []
    assert await sessions_of(api, "bob@example.com") == []


async def test_malformed_and_oversized_mails_get_a_clear_4xx(api: Api) -> None:
    no_sender = signed(mailgun() | {"from": "nobody", "sender": ""})
    invalid = await post_mailgun(api, no_sender)
    assert invalid.status_code == 422
    assert invalid.json()["message"] == "from: expected the sender's email address"
    bad_headers = await post_mailgun(api, signed(mailgun() | {"message-headers": "{"}))
    assert bad_headers.json()["message"] == "message-headers: expected JSON"
    async with api.client(None) as client:
        not_a_form = await client.post(MAILGUN, json={"from": "ann@example.com"})
    assert not_a_form.status_code == 400
    huge = signed(mailgun(text="x" * 70_000))
    assert (await post_mailgun(api, huge)).status_code == 413
    no_headers = await post_sendgrid(api, sendgrid() | {"headers": ""})
    assert no_headers.status_code == 422 and "headers" in no_headers.json()["message"]
    assert await sessions_of(api, "ann@example.com") == []
    # Nothing accepted before is lost: the valid mail is taken after the refusals.
    assert (await post_mailgun(api, signed(mailgun(text="hello")))).json()["accepted"] == 1


async def test_auto_replies_are_skipped(api: Api) -> None:
    auto = mailgun(text="I am out of office", extra_headers=[["Auto-Submitted", "auto-replied"]])
    answer = await post_mailgun(api, signed(auto))
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 0 and "Auto-Submitted" in answer.json()["skipped"][0]
    assert await sessions_of(api, "ann@example.com") == []


async def test_unconfigured_tenants_providers_and_secrets(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with api.client(None) as client:
        unknown = await client.post("/v1/channels/email/nobody/mailgun", data={})
        no_parse = await client.post("/v1/channels/email/globex/sendgrid", data={})
    assert unknown.status_code == 404 and "no email address" in unknown.json()["message"]
    assert no_parse.status_code == 404 and "SendGrid" in no_parse.json()["message"]
    monkeypatch.delenv("MAILGUN_SIGNING_KEY")
    missing = await post_mailgun(api, signed(mailgun(text="hello")))
    assert missing.status_code == 503 and "MAILGUN_SIGNING_KEY" in missing.json()["message"]


async def test_over_the_rate_the_mail_is_stored_and_the_excess_recorded(
    tmp_path: Path, sink: tuple[SmtpSink, int]
) -> None:
    """SendGrid drops what gets a 4xx: a mail over the tenant's rate is taken all the same."""
    async with email_api(tmp_path, sink[1], rate="1/minute") as api:
        first = await post_mailgun(api, signed(mailgun(text="hello")))
        second = await post_mailgun(api, signed(mailgun(message_id="<2@mail>")))
        async with api.client("acme") as client:
            found = await client.get("/v1/events", params={"kind": "rate.exceeded"})
        assert await messages_of(api, "ann@example.com") == ["hello", "Where is my order 1001?"]
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["accepted"] == 1
    [event] = found.json()["items"]
    assert event["data"]["channel"] == "email" and event["data"]["limit"] == "1/minute"


async def test_an_smtp_outage_delays_the_reply_and_sends_it_exactly_once(tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet: connections are refused
    async with email_api(tmp_path, port) as api:
        assert (await post_mailgun(api, signed(mailgun(text="hello")))).status_code == 200
        async with api.client("acme") as client:
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                listed = (await client.get("/v1/sessions")).json()["items"]
                detail = listed and (await client.get(f"/v1/sessions/{listed[0]['session_id']}"))
                replies = detail.json()["replies"] if detail else []
                if replies and replies[0]["attempts"] >= 1:
                    break
                assert asyncio.get_running_loop().time() < deadline, replies
                await asyncio.sleep(0.05)
            assert replies[0]["status"] == "pending"
        with smtp_sink(port) as (server, _port):
            server.script.append(("DATA", "451 4.3.0 Try again later"))  # then a 4xx
            [session] = await sessions_of(api, "ann@example.com")
            [mail] = await mails_at(server, 1)
            [reply] = session["replies"]
            assert reply["status"] == "sent" and reply["attempts"] >= 3
            assert await delivered_ids(api) == [mail["Message-ID"]]
            assert len(server.received()) == 1


async def test_a_mailgun_signature_signs_one_mail_only(api: Api) -> None:
    first = signed(mailgun(text="hello"))
    assert (await post_mailgun(api, first)).json()["accepted"] == 1
    assert (await post_mailgun(api, dict(first))).json()["duplicates"] == 1  # a retry
    stamp = {k: first[k] for k in ("timestamp", "token", "signature")}
    forged = mailgun(text="refund me", message_id="<forged@evil.example>") | stamp
    answer = await post_mailgun(api, forged)
    assert answer.status_code == 401 and "token already used" in answer.json()["message"]
    [session] = await sessions_of(api, "ann@example.com")
    assert [m["text"] for m in session["messages"]] == ["hello"]


async def messages_of(api: Api, customer: str) -> list[str]:
    return [m["text"] for s in await sessions_of(api, customer) for m in s["messages"]]


async def test_invalid_utf_8_is_refused_naming_the_field_and_nothing_is_stored(
    api: Api,
) -> None:
    form = signed(mailgun(text="caf\u00e9"))
    raw = urlencode(form).replace("caf%C3%A9", "caf%FF").encode()
    async with api.client(None) as client:
        urlencoded = await client.post(
            MAILGUN, content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        request = client.build_request(
            "POST", MAILGUN, data=signed(mailgun(text="caf\u00e9")), files=ATTACHMENT
        )
        body = request.read().replace("caf\u00e9".encode(), b"caf\xff")
        multipart = await client.post(
            MAILGUN, content=body, headers={"Content-Type": request.headers["Content-Type"]}
        )
    assert (urlencoded.status_code, urlencoded.json()["error"]) == (400, "not_a_form")
    assert "UTF-8" in urlencoded.json()["message"]
    assert (multipart.status_code, multipart.json()["message"]) == (
        422,
        "body-plain: not valid utf-8",
    )
    assert await sessions_of(api, "ann@example.com") == []


async def test_sendgrid_fields_are_read_in_the_charset_it_declares(api: Api) -> None:
    # ISO-8859-15's euro sign is 0xA4, which a Latin-1 guess would store as "¤".
    fields = sendgrid(text="caf\u00e9 for 5 \u20ac")
    fields["charsets"] = json.dumps({"text": "iso-8859-15", "from": "UTF-8"})
    headers = {"Authorization": "Basic " + base64.b64encode(PARSE_AUTH.encode()).decode()}
    async with api.client(None) as client:
        request = client.build_request(
            "POST", SENDGRID, data=fields, files=ATTACHMENT, headers=headers
        )
        text = "caf\u00e9 for 5 \u20ac"
        body = request.read().replace(text.encode(), text.encode("iso-8859-15"))
        headers["Content-Type"] = request.headers["Content-Type"]
        answer = await client.post(SENDGRID, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert await messages_of(api, "bob@example.com") == ["caf\u00e9 for 5 \u20ac"]


async def test_a_text_longer_than_a_message_is_cut_and_the_cut_is_recorded(api: Api) -> None:
    answer = await post_mailgun(api, signed(mailgun(text="x" * 20_000)))
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    [text] = await messages_of(api, "ann@example.com")
    assert len(text) == MAX_TEXT_LENGTH and text.endswith("\u2026")
    async with api.client("acme") as client:
        events = (await client.get("/v1/events", params={"kind": "message.truncated"})).json()
    [event] = events["items"]
    assert event["data"]["original_length"] == 20_000
    assert event["data"]["stored_length"] == MAX_TEXT_LENGTH
    assert event["data"]["provider"] == "mailgun"


async def test_a_mail_for_another_address_is_refused_and_audited(api: Api) -> None:
    elsewhere = mailgun(text="hello") | {"recipient": "sales@other.example"}
    refused = await post_mailgun(api, signed(elsewhere))
    assert (refused.status_code, refused.json()["error"]) == (406, "not_tenant_address")
    to_globex = sendgrid() | {"envelope": json.dumps({"to": ["help@globex.example"]})}
    refused_sg = await post_sendgrid(api, to_globex)
    assert (refused_sg.status_code, refused_sg.json()["error"]) == (403, "not_tenant_address")
    assert await sessions_of(api, "ann@example.com") == []
    assert await sessions_of(api, "bob@example.com") == []
    async with api.client("acme") as client:
        audited = (await client.get("/v1/events", params={"kind": "webhook.refused"})).json()
    assert [(e["data"]["provider"], e["data"]["field"]) for e in audited["items"]] == [
        ("mailgun", "recipient"),
        ("sendgrid", "recipient"),
    ]
    assert "sales@other.example" in audited["items"][0]["data"]["reason"]
    # One of several recipients being the tenant's is enough; it is the one recorded.
    cc = mailgun(text="hello") | {"recipient": f"sales@other.example, {ADDRESS.upper()}"}
    assert (await post_mailgun(api, signed(cc))).json()["accepted"] == 1


async def test_aliases_are_the_tenant_s_addresses(
    tmp_path: Path, sink: tuple[SmtpSink, int]
) -> None:
    body = email_config(sink[1])
    body["tenants"]["acme"]["email"]["aliases"] = ["help@acme.example", "@acme-mail.example"]  # type: ignore[index]
    settings = ApiSettings(max_webhook_bytes=64 * 1024)
    async for served in serve_api(tmp_path, body, settings):
        for n, to in enumerate(["help@acme.example", "any@acme-mail.example"]):
            form = mailgun(text="hello", message_id=f"<{n}@mail>") | {"recipient": to}
            assert (await post_mailgun(served, signed(form))).json()["accepted"] == 1
        other = mailgun(text="hello", message_id="<3@mail>") | {"recipient": "x@other.example"}
        assert (await post_mailgun(served, signed(other))).status_code == 406
