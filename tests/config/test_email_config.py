"""A tenant's support address in the configuration: secrets only as references, an agent
that exists, a coherent SMTP server, at least one inbound provider; email does not
accumulate unless configured to."""

from pathlib import Path
from typing import Any

import httpx
import pytest

from acf.bootstrap import ToolBackends, build_agents
from acf.bootstrap.channels import channel_senders, tenant_accounts
from acf.channels.email.provider import EMAIL, email_accounts
from acf.config.load import load_config
from acf.demo import demo_tools
from acf.domain.channels import Channel
from acf.domain.policy import AccumulationMode
from tests.config.test_config_file import base, error_of, write

MAILBOX: dict[str, Any] = {
    "agent": "support",
    "address": "Support@Acme.example",
    "display_name": "Acme Support",
    "inbound": {
        "mailgun": {"signing_key": "${MAILGUN_SIGNING_KEY}"},
        "sendgrid": {"basic_auth": "${SENDGRID_PARSE_AUTH}"},
    },
    "smtp": {
        "host": "smtp.acme.example",
        "username": "${SMTP_USER}",
        "password": "${SMTP_PASSWORD}",
    },
}


def with_mailbox(**changes: Any) -> dict[str, Any]:
    body = base()
    body["tenants"]["acme"]["email"] = {**MAILBOX, **changes}
    return body


def test_a_mailbox_loads_with_the_smtp_defaults(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, with_mailbox()))
    mailbox = loaded.config.tenants["acme"].email
    assert mailbox is not None
    assert mailbox.address == "support@acme.example" and mailbox.domain == "acme.example"
    assert (mailbox.smtp.port, mailbox.smtp.starttls, mailbox.smtp.use_tls) == (587, True, False)
    assert loaded.missing_secrets({}) == [
        "MAILGUN_SIGNING_KEY",
        "SENDGRID_PARSE_AUTH",
        "SMTP_PASSWORD",
        "SMTP_USER",
    ]
    [account] = email_accounts(tenant_accounts(loaded, EMAIL)).values()
    assert (account.host, account.port, account.username) == (
        "smtp.acme.example",
        587,
        "${SMTP_USER}",
    )


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"inbound": {"mailgun": {"signing_key": "key-inline"}}}, "inbound.mailgun.signing_key"),
        ({"inbound": {"sendgrid": {"basic_auth": "user:pw"}}}, "inbound.sendgrid.basic_auth"),
        ({"smtp": {"host": "h", "username": "u", "password": "${P}"}}, "smtp.username"),
    ],
)
def test_an_inline_secret_is_refused(tmp_path: Path, changes: dict[str, Any], where: str) -> None:
    message = error_of(tmp_path, with_mailbox(**changes))
    assert f"tenants.acme.email.{where}" in message and "${NAME}" in message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"agent": "sales"}, "email.agent 'sales' is not one of the agents"),
        ({"address": "support"}, "tenants.acme.email.address"),
        ({"inbound": {}}, "expected mailgun and/or sendgrid"),
        ({"smtp": {"host": "h", "use_tls": True}}, "use_tls and starttls exclude each other"),
        ({"smtp": {"host": "h", "username": "${U}"}}, "both username and password"),
        ({"smtp": {"host": "h", "port": 0}}, "tenants.acme.email.smtp.port"),
    ],
)
def test_invalid_mailboxes_are_refused_naming_the_field(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    assert expected in error_of(tmp_path, with_mailbox(**changes))


def test_sendgrid_without_basic_auth_and_smtp_over_tls_load(tmp_path: Path) -> None:
    changes = {
        "inbound": {"sendgrid": {}},
        "smtp": {"host": "h", "port": 465, "use_tls": True, "starttls": False},
    }
    mailbox = load_config(write(tmp_path, with_mailbox(**changes))).config.tenants["acme"].email
    assert mailbox is not None and mailbox.inbound.sendgrid is not None
    assert mailbox.inbound.sendgrid.basic_auth is None and mailbox.inbound.mailgun is None


async def test_email_does_not_accumulate_and_has_a_sender_only_with_a_thread_store(
    tmp_path: Path,
) -> None:
    loaded = load_config(write(tmp_path, with_mailbox()))
    async with httpx.AsyncClient() as http:
        agents = build_agents(loaded, ToolBackends(http, demo_tools()))
        email = agents.get("acme", "support").settings.policy_for(Channel.EMAIL)
        assert email.mode is AccumulationMode.OFF
        with pytest.raises(ValueError, match="email_threads"):
            channel_senders(loaded, http)
