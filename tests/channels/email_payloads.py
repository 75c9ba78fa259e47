"""Inbound mail in the providers' shapes (reference/channels.md § Inbound email): a Mailgun
route's form fields and a SendGrid Inbound Parse form."""

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

SIGNING_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
ADDRESS = "support@acme.example"

# Worked example (computed with `openssl dgst -sha256 -hmac`, not with the code under test).
EXAMPLE_TIMESTAMP = "1749416383"
EXAMPLE_TOKEN = "c2d8f6a1b3e94f07d5a2c8e1f6b9d3a7e0c4f8b2a6d9e3f1"
EXAMPLE_SIGNATURE = "a6eab776b58267e35e2ef16d03e941fa95c041e8dcf76fdb2d1711321c650ede"


def sign(fields: dict[str, str], key: str = SIGNING_KEY, at: float | None = None) -> None:
    """Add Mailgun's ``timestamp``, ``token`` and ``signature`` to ``fields``."""
    timestamp = str(int(time.time() if at is None else at))
    token = secrets.token_hex(25)  # Mailgun's tokens: 50 random characters
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    fields |= {"timestamp": timestamp, "token": token, "signature": digest}


def mailgun(
    text: str = "Where is my order 1001?",
    message_id: str | None = "<CAF=abc123@mail.gmail.com>",
    sender: str = "Ann Lee <ann@example.com>",
    subject: str = "Order 1001",
    in_reply_to: str | None = None,
    references: str | None = None,
    stripped: str | None = None,
    extra_headers: list[list[str]] | None = None,
) -> dict[str, str]:
    """A Mailgun route's form (unsigned: see ``sign``)."""
    headers = [
        ["Received", "by mx.mailgun.org"],
        ["From", sender],
        ["To", ADDRESS],
        ["Subject", subject],
        ["Date", "Mon, 09 Jun 2025 10:59:43 +0000"],
    ]
    if message_id is not None:
        headers.append(["Message-Id", message_id])
    if in_reply_to is not None:
        headers.append(["In-Reply-To", in_reply_to])
    if references is not None:
        headers.append(["References", references])
    headers += extra_headers or []
    fields = {
        "recipient": ADDRESS,
        "sender": "bounce+2f1a@example.com",
        "from": sender,
        "subject": subject,
        "body-plain": text,
        "message-headers": json.dumps(headers),
    }
    if stripped is not None:
        fields["stripped-text"] = stripped
    return fields


def sendgrid(
    text: str = "Where is my order 1001?",
    message_id: str | None = "<sg-1@mail.example.com>",
    sender: str = "Bob Stone <Bob@Example.com>",
    subject: str = "Order 2002",
    in_reply_to: str | None = None,
    references: str | None = None,
    html: str | None = None,
) -> dict[str, Any]:
    """A SendGrid Inbound Parse form (its multipart fields as strings)."""
    lines = [
        "Received: by mx.sendgrid.net",
        f"From: {sender}",
        f"To: {ADDRESS}",
        f"Subject: {subject}",
        "Date: Tue, 10 Jun 2025 08:00:00 +0200",
        "MIME-Version: 1.0",
    ]
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    if in_reply_to is not None:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references is not None:
        lines.append(f"References: {references}")
    fields = {
        "headers": "\n".join(lines) + "\n",
        "from": sender,
        "to": ADDRESS,
        "subject": subject,
        "text": text,
        "envelope": json.dumps({"to": [ADDRESS], "from": "bob@example.com"}),
        "charsets": json.dumps({"to": "UTF-8", "subject": "UTF-8", "text": "UTF-8"}),
        "spam_score": "0.1",
    }
    if html is not None:
        fields["html"] = html
    return fields
