"""A tenant's Twilio account in the configuration: the SIDs and numbers in Twilio's shapes,
the token only as a reference, a sender, and one WhatsApp provider per tenant."""

from pathlib import Path

import pytest

from acf.bootstrap.channels import tenant_accounts
from acf.channels.twilio.provider import TWILIO, twilio_accounts
from acf.config.load import load_config
from tests.config.test_config_file import base, error_of, write
from tests.config.test_whatsapp_config import NUMBER

ACCOUNT = {
    "agent": "support",
    "account_sid": "AC" + "0123456789abcdef" * 2,
    "auth_token": "${TWILIO_AUTH_TOKEN}",
    "from_number": "+15017122661",
}


def with_account(**changes: object) -> dict:
    body = base()
    account = {**ACCOUNT, **changes}
    body["tenants"]["acme"]["twilio"] = {k: v for k, v in account.items() if v is not None}
    return body


def test_an_account_loads_with_twilio_s_defaults(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, with_account()))
    account = loaded.config.tenants["acme"].twilio
    assert account is not None
    assert str(account.api_base_url) == "https://api.twilio.com/"
    assert (account.max_segments, account.public_url, account.whatsapp_from) == (10, None, None)
    assert loaded.missing_secrets({}) == ["TWILIO_AUTH_TOKEN"]
    assert twilio_accounts(tenant_accounts(loaded, TWILIO))["acme"].status_callback is None


def test_statuses_are_asked_for_at_the_public_url(tmp_path: Path) -> None:
    body = with_account(public_url="https://acf.example.com", max_segments=3)
    [(tenant, account)] = twilio_accounts(
        tenant_accounts(load_config(write(tmp_path, body)), TWILIO)
    ).items()
    assert tenant == "acme"
    assert account.status_callback == "https://acf.example.com/v1/channels/twilio/acme/status"
    assert (account.max_segments, account.api_base_url) == (3, "https://api.twilio.com/")


def test_an_inline_token_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, with_account(auth_token="the-real-token"))
    assert "tenants.acme.twilio.auth_token" in message and "${NAME}" in message


def test_the_agent_must_exist(tmp_path: Path) -> None:
    message = error_of(tmp_path, with_account(agent="sales"))
    assert "twilio.agent 'sales' is not one of the agents" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account_sid", "AC123"),
        ("account_sid", "MG" + "0" * 32),
        ("account_sid", "AC" + "A" * 32),  # Twilio's hex is lower-case
        ("from_number", "15017122661"),
        ("from_number", "+1 501 712 2661"),
        ("messaging_service_sid", "MG123"),
        ("whatsapp_from", "whatsapp:+14155238886"),
        ("public_url", "not a url"),
        ("max_segments", 0),
        ("max_segments", 11),
    ],
)
def test_values_in_twilio_s_shapes(tmp_path: Path, field: str, value: object) -> None:
    assert f"tenants.acme.twilio.{field}" in error_of(tmp_path, with_account(**{field: value}))


def test_a_sender_is_required(tmp_path: Path) -> None:
    message = error_of(tmp_path, with_account(from_number=None))
    assert "tenants.acme.twilio" in message
    assert "expected from_number or messaging_service_sid" in message
    service = with_account(from_number=None, messaging_service_sid="MG" + "0" * 32)
    assert load_config(write(tmp_path, service)).config.tenants["acme"].twilio is not None


def test_whatsapp_comes_from_meta_or_from_twilio_not_both(tmp_path: Path) -> None:
    both = with_account(whatsapp_from="+14155238886")
    both["tenants"]["acme"]["whatsapp"] = NUMBER
    message = error_of(tmp_path, both)
    assert "whatsapp and twilio.whatsapp_from both configure WhatsApp" in message
    sms_only = with_account()
    sms_only["tenants"]["acme"]["whatsapp"] = NUMBER  # SMS by Twilio, WhatsApp by Meta
    tenant = load_config(write(tmp_path, sms_only)).config.tenants["acme"]
    assert tenant.twilio is not None and tenant.whatsapp is not None
