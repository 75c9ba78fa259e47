"""Email replies out by SMTP, against a real SMTP server on loopback and a real SQLite
thread store."""

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from acf.channels.email.mail import EmailAccount, build_mail, reply_subject
from acf.channels.email.outbound import SmtpEmailSender
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.session_key import SessionKey
from acf.ports.channel_sender import DeliveryError, OutboundMessage
from acf.ports.email_threads import ReplyContext
from acf.ports.store import Store
from tests.channels.smtp_sink import SmtpSink, free_port, smtp_sink

CUSTOMER = "ann@example.com"


@pytest.fixture
def sink() -> Iterator[tuple[SmtpSink, int]]:
    with smtp_sink() as running:
        yield running


def account(port: int, **changes: Any) -> EmailAccount:
    fields: dict[str, Any] = {
        "address": "support@acme.example",
        "display_name": "Acme Support",
        "host": "127.0.0.1",
        "port": port,
        "timeout_s": 5.0,
    }
    return EmailAccount(**(fields | changes))


def reply(text: str, buttons: Sequence[tuple[str, str]] = (), **extra: object) -> OutboundMessage:
    key = SessionKey("acme", "support", CUSTOMER, Channel.EMAIL)
    payload = {"text": text, "buttons": [{"id": i, "title": t} for i, t in buttons], **extra}
    return OutboundMessage(key, 7, payload)


async def send(store: Store, port: int, message: OutboundMessage, **changes: Any) -> str:
    sender = SmtpEmailSender({"acme": account(port, **changes)}, store.email_threads)
    return (await sender.send(message)).provider_message_id


async def customer_wrote(store: Store) -> None:
    await store.email_threads.record_inbound(
        "acme", CUSTOMER, "<m2@mail.example>", ["<m1@mail.example>"], "Order 1001", 1_000
    )


async def test_a_reply_is_threaded_under_the_customers_mail(
    store: Store, sink: tuple[SmtpSink, int]
) -> None:
    server, port = sink
    await customer_wrote(store)
    message_id = await send(store, port, reply("Order 1001 is shipped."))
    [mail] = server.received()
    assert mail["Message-ID"] == message_id
    assert message_id.startswith("<") and message_id.endswith("@acme.example>")
    assert mail["From"] == "Acme Support <support@acme.example>"
    assert mail["To"] == CUSTOMER
    assert mail["Subject"] == "Re: Order 1001"
    assert mail["In-Reply-To"] == "<m2@mail.example>"
    assert mail["References"] == "<m1@mail.example> <m2@mail.example>"
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail.get_content().strip() == "Order 1001 is shipped."
    assert server.envelopes == [("support@acme.example", [CUSTOMER])]
    # Our Message-ID is recorded: the customer's answer to it finds them.
    assert await store.email_threads.find_customer("acme", message_id, []) == CUSTOMER


async def test_buttons_become_numbered_options(store: Store, sink: tuple[SmtpSink, int]) -> None:
    server, port = sink
    await send(store, port, reply("Refund order 42?", [("yes", "Yes"), ("no", "No")]))
    [mail] = server.received()
    assert mail.get_content().splitlines() == ["Refund order 42?", "", "1. Yes", "2. No"]
    assert mail["Subject"] == "Your message" and mail["In-Reply-To"] is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Order 1001", "Re: Order 1001"),
        ("Re: Order 1001", "Re: Order 1001"),
        ("RE:Order", "RE:Order"),
        ("Re[2]: Order", "Re[2]: Order"),
        ("  Where   is\tit ", "Re: Where is it"),
        ("Regarding order", "Re: Regarding order"),
        ("", "Your message"),
    ],
)
def test_the_subject_is_never_re_re(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


def test_a_mail_without_text_or_with_media_cannot_be_built() -> None:
    context = ReplyContext("s", "<p@x>", ("<p@x>",))
    with pytest.raises(InvalidValue, match="no text"):
        build_mail(account(25), CUSTOMER, {"text": "  "}, context, "<id@x>", "now")
    with pytest.raises(InvalidValue, match="media"):
        build_mail(account(25), CUSTOMER, {"text": "a", "media": ["u"]}, context, "<id@x>", "now")


@pytest.mark.parametrize(
    ("stage", "answer", "definite"),
    [
        ("RCPT", "550 5.1.1 No such user", True),
        ("DATA", "554 5.7.1 Message rejected as spam", True),
        ("RCPT", "450 4.2.1 Mailbox busy", False),
        ("DATA", "451 4.3.0 Try again later", False),
    ],
)
async def test_smtp_5xx_is_definite_and_4xx_is_retried(
    store: Store, sink: tuple[SmtpSink, int], stage: str, answer: str, definite: bool
) -> None:
    server, port = sink
    server.script.append((stage, answer))
    with pytest.raises(DeliveryError) as failed:
        await send(store, port, reply("hi"))
    assert failed.value.definite is definite
    assert answer[:3] in str(failed.value)
    assert server.received() == []
    await send(store, port, reply("hi"))  # what the relay's retry does: one mail arrives
    assert len(server.received()) == 1


async def test_a_refused_connection_is_retried(store: Store) -> None:
    with pytest.raises(DeliveryError) as failed:
        await send(store, free_port(), reply("hi"))
    assert not failed.value.definite


async def test_a_server_without_the_configured_starttls_gets_nothing_and_is_retried(
    store: Store, sink: tuple[SmtpSink, int]
) -> None:
    server, port = sink
    with pytest.raises(DeliveryError, match="STARTTLS") as failed:
        await send(store, port, reply("hi"), starttls=True)
    assert not failed.value.definite
    assert server.received() == []


async def test_a_missing_smtp_password_is_a_definite_refusal(
    store: Store, sink: tuple[SmtpSink, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, port = sink
    monkeypatch.setenv("SMTP_USER", "acme")
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    with pytest.raises(DeliveryError, match="SMTP_PASSWORD") as failed:
        await send(store, port, reply("hi"), username="${SMTP_USER}", password="${SMTP_PASSWORD}")
    assert failed.value.definite
    assert server.received() == []


async def test_a_tenant_without_an_address_is_a_definite_refusal(store: Store) -> None:
    other = OutboundMessage(SessionKey("globex", "support", CUSTOMER, Channel.EMAIL), 1, {})
    with pytest.raises(DeliveryError, match="globex") as failed:
        await SmtpEmailSender({}, store.email_threads).send(other)
    assert failed.value.definite


async def test_smtp_login_uses_the_secrets_and_a_refused_login_is_definite(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_USER", "acme")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    refs = {"username": "${SMTP_USER}", "password": "${SMTP_PASSWORD}"}
    with smtp_sink(login=("acme", "s3cret")) as (server, port):
        await send(store, port, reply("hi"), **refs)
        assert len(server.received()) == 1 and server.logins == ["acme"]
        monkeypatch.setenv("SMTP_PASSWORD", "wrong")
        with pytest.raises(DeliveryError, match="535") as failed:
            await send(store, port, reply("hi"), **refs)
        assert failed.value.definite
        assert len(server.received()) == 1
