"""Inbound mail, pure: Mailgun's signature, basic auth, both providers' forms parsed into one
normalised mail, quoted history removed."""

import base64

import pytest

from acf.channels.email.inbound import (
    InboundMail,
    basic_auth_ok,
    mailgun_signature_problem,
    parse_mailgun,
    parse_sendgrid,
)
from acf.channels.email.text import html_to_text, reply_text
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import MAX_TEXT_LENGTH
from tests.channels.email_payloads import (
    EXAMPLE_SIGNATURE,
    EXAMPLE_TIMESTAMP,
    EXAMPLE_TOKEN,
    SIGNING_KEY,
    mailgun,
    sendgrid,
)

NOW = int(EXAMPLE_TIMESTAMP)
SIGNED = {"timestamp": EXAMPLE_TIMESTAMP, "token": EXAMPLE_TOKEN, "signature": EXAMPLE_SIGNATURE}


def test_the_worked_mailgun_signature_example_is_accepted() -> None:
    assert mailgun_signature_problem(SIGNING_KEY, SIGNED, NOW) is None
    upper = SIGNED | {"signature": EXAMPLE_SIGNATURE.upper()}
    assert mailgun_signature_problem(SIGNING_KEY, upper, NOW + 60) is None


@pytest.mark.parametrize(
    ("fields", "key", "now", "problem"),
    [
        (SIGNED, "another-key", NOW, "does not match"),
        (SIGNED | {"token": EXAMPLE_TOKEN[:-1] + "0"}, SIGNING_KEY, NOW, "does not match"),
        (SIGNED | {"timestamp": str(NOW + 1)}, SIGNING_KEY, NOW, "does not match"),
        (SIGNED | {"signature": ""}, SIGNING_KEY, NOW, "are required"),
        ({"timestamp": EXAMPLE_TIMESTAMP, "token": EXAMPLE_TOKEN}, SIGNING_KEY, NOW, "required"),
        (SIGNED, SIGNING_KEY, NOW + 15 * 60 + 1, "more than 15 minutes"),
        (SIGNED, SIGNING_KEY, NOW - 15 * 60 - 1, "more than 15 minutes"),
    ],
)
def test_a_bad_or_stale_mailgun_signature_is_refused(
    fields: dict[str, str], key: str, now: int, problem: str
) -> None:
    found = mailgun_signature_problem(key, fields, now)
    assert found is not None and problem in found


def test_the_boundary_of_the_timestamp_window_is_accepted() -> None:
    assert mailgun_signature_problem(SIGNING_KEY, SIGNED, NOW + 15 * 60) is None


def basic(value: str) -> str:
    return "Basic " + base64.b64encode(value.encode()).decode()


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (basic("parse:s3cret"), True),
        ("basic " + base64.b64encode(b"parse:s3cret").decode(), True),
        (basic("parse:wrong"), False),
        (basic("parse:s3cret "), False),
        ("Bearer " + base64.b64encode(b"parse:s3cret").decode(), False),
        ("Basic not-base64!", False),
        ("", False),
        (None, False),
    ],
)
def test_sendgrid_basic_auth(header: str | None, ok: bool) -> None:
    assert basic_auth_ok(header, "parse:s3cret") is ok


def test_a_mailgun_mail_is_normalised() -> None:
    mail = parse_mailgun(
        mailgun(
            text="Where is it?\n\nOn Mon, 9 Jun 2025 at 10:00, Acme <support@acme.example> wrote:"
            "\n> Thanks for writing",
            stripped="Where is it?",
            in_reply_to="<ours@acme.example>",
            references="<first@mail> <ours@acme.example>",
        )
    )
    assert mail == InboundMail(
        customer="ann@example.com",
        recipient="support@acme.example",
        message_id="<CAF=abc123@mail.gmail.com>",
        in_reply_to="<ours@acme.example>",
        references=("<first@mail>", "<ours@acme.example>"),
        subject="Order 1001",
        text="Where is it?",
        date_ms=1749466783000,
        sender_name="Ann Lee",
        recipients=("support@acme.example",),
    )
    message = mail.message("acme", "support", mail.customer)
    assert message.key.channel is Channel.EMAIL and message.key.customer == "ann@example.com"
    assert message.text == "Where is it?" and message.sender_name == "Ann Lee"
    assert message.provider_message_id == mail.provider_id


def test_without_stripped_text_mailgun_s_body_loses_its_quoted_history() -> None:
    wrapped = "On Tue, Jun 10, 2025 at 9:00 AM Acme Support <\nsupport@acme.example> wrote:"
    body = f"Thanks!\n\n{wrapped}\n> old"
    assert parse_mailgun(mailgun(text=body)).text == "Thanks!"


def test_a_sendgrid_mail_is_normalised() -> None:
    mail = parse_sendgrid(
        sendgrid(
            text="Still waiting.\n\n> On Mon you wrote:\n> We are on it",
            in_reply_to="<ours-2@acme.example>",
        )
    )
    assert mail.customer == "bob@example.com"  # lower-cased
    assert mail.sender_name == "Bob Stone"
    assert mail.recipient == "support@acme.example"
    assert mail.message_id == "<sg-1@mail.example.com>"
    assert mail.in_reply_to == "<ours-2@acme.example>"
    assert mail.references == () and mail.thread_references == ("<ours-2@acme.example>",)
    assert mail.text == "Still waiting."
    assert mail.date_ms == 1749535200000


def test_an_html_only_mail_is_read_without_its_quote() -> None:
    html = (
        "<html><head><style>p{}</style></head><body><p>Where&nbsp;is <b>my</b> order?</p>"
        "<blockquote>old text</blockquote></body></html>"
    )
    mail = parse_sendgrid(sendgrid(text="", html=html))
    assert mail.text == "Where is my order?"


def test_the_dedupe_key_is_not_the_bare_message_id() -> None:
    ann = parse_mailgun(mailgun(sender="ann@example.com"))
    eve = parse_mailgun(mailgun(sender="eve@evil.example"))  # the same Message-ID, forged
    assert ann.message_id == eve.message_id
    assert ann.provider_id != eve.provider_id
    assert ann.provider_id == parse_mailgun(mailgun(sender="ann@example.com")).provider_id
    assert ann.provider_id.startswith("email:") and len(ann.provider_id) <= 256


def test_a_mail_without_message_id_gets_one_derived_from_its_content() -> None:
    first = parse_mailgun(mailgun(message_id=None))
    retry = parse_mailgun(mailgun(message_id=None))
    other = parse_mailgun(mailgun(message_id=None, text="Another question"))
    assert first.message_id.endswith("@derived.acf>")
    assert first.provider_id == retry.provider_id
    assert first.provider_id != other.provider_id


def test_a_bare_message_id_is_bracketed() -> None:
    assert parse_mailgun(mailgun(message_id="abc@host")).message_id == "<abc@host>"


def test_auto_replies_are_recognised() -> None:
    auto = [["Auto-Submitted", "auto-replied"]]
    assert parse_mailgun(mailgun(extra_headers=auto)).auto_submitted
    assert not parse_mailgun(mailgun(extra_headers=[["Auto-Submitted", "no"]])).auto_submitted
    assert not parse_mailgun(mailgun()).auto_submitted


def test_a_long_mail_is_cut_to_the_message_limit() -> None:
    mail = parse_mailgun(mailgun(text="x" * (MAX_TEXT_LENGTH + 10)))
    text = mail.message("acme", "support", mail.customer).text
    assert text is not None and len(text) == MAX_TEXT_LENGTH and text.endswith("…")


def test_a_mail_without_text_reads_as_its_subject() -> None:
    mail = parse_mailgun(mailgun(text="", subject="Cancel order 1001"))
    assert mail.message("acme", "support", mail.customer).text == "Cancel order 1001"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"message-headers": "{not json"}, "message-headers: expected JSON"),
        (
            {"message-headers": '{"From": "x"}'},
            "message-headers: expected a JSON list of [name, value]",
        ),
        (
            {"message-headers": '[["From"]]'},
            "message-headers: item 0: expected [name, value]",
        ),
        ({"from": "not an address", "sender": ""}, "from: expected the sender's email address"),
        ({"recipient": "nobody"}, "recipient: expected the recipient's email address"),
    ],
)
def test_malformed_mailgun_forms_name_the_field(changes: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidValue) as failed:
        parse_mailgun(mailgun() | changes)
    assert str(failed.value) == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"headers": ""}, "headers: expected the mail's raw headers"),
        ({"envelope": "[oops"}, "envelope: expected JSON"),
        ({"from": "", "headers": "Subject: x\n"}, "from: expected the sender's email address"),
    ],
)
def test_malformed_sendgrid_forms_name_the_field(changes: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidValue) as failed:
        parse_sendgrid(sendgrid() | changes)
    assert str(failed.value) == field


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Thanks!", "Thanks!"),
        ("Yes please.\r\n\r\nOn Mon, 9 Jun 2025, Acme wrote:\r\n> Refund?", "Yes please."),
        ("> quoted first\nmy answer\n> more quote", "my answer"),
        ("Fine.\n\n-----Original Message-----\nFrom: Acme", "Fine."),
        (
            "On Monday I ordered twice.\nPlease refund one.",
            "On Monday I ordered twice.\nPlease refund one.",
        ),
        ("", ""),
    ],
)
def test_reply_text_drops_the_quoted_history(body: str, expected: str) -> None:
    assert reply_text(body) == expected


def test_html_to_text_keeps_blocks_as_lines() -> None:
    assert html_to_text("<div>one</div><div>two<br>three</div><script>x()</script>") == (
        "one\ntwo\nthree"
    )
