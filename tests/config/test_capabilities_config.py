"""A tenant's capability overrides: applied over acf's defaults, checked with the path."""

from pathlib import Path

import httpx
import pytest

from acf.bootstrap import ToolBackends, build_agents
from acf.bootstrap.channels import tenant_accounts
from acf.channels.telegram.provider import TELEGRAM, telegram_accounts
from acf.channels.twilio.provider import TWILIO, twilio_accounts
from acf.config.load import ConfigError, load_config
from acf.demo import demo_tools
from acf.domain.channels import Channel
from tests.config.test_config_file import base, error_of, write


def test_overrides_reach_the_agents_settings(tmp_path: Path) -> None:
    body = base()
    body["tenants"]["acme"]["capabilities"] = {
        "whatsapp": {"max_buttons": 0},
        "sms": {"max_text_length": 480},
    }
    agents = build_agents(
        load_config(write(tmp_path, body)), ToolBackends(httpx.AsyncClient(), demo_tools())
    )
    settings = agents.get("acme", "support").settings
    assert settings.capabilities_for(Channel.WHATSAPP).max_buttons == 0
    assert settings.capabilities_for(Channel.WHATSAPP).max_text_length == 4096
    assert settings.capabilities_for(Channel.SMS).max_text_length == 480
    assert settings.capabilities_for(Channel.WEB).max_buttons == 10


def test_an_unknown_field_or_channel_is_refused(tmp_path: Path) -> None:
    body = base()
    body["tenants"]["acme"]["capabilities"] = {"whatsapp": {"colour": True}}
    assert "tenants.acme.capabilities.whatsapp.colour" in error_of(tmp_path, body)
    body["tenants"]["acme"]["capabilities"] = {"fax": {}}
    assert "tenants.acme.capabilities.fax" in error_of(tmp_path, body)


def test_inconsistent_overrides_name_the_channel(tmp_path: Path) -> None:
    body = base()
    body["tenants"]["acme"]["capabilities"] = {"sms": {"typing_indicator": True}}
    loaded = load_config(write(tmp_path, body))
    with pytest.raises(ConfigError, match=r"tenants\.acme\.capabilities\.sms: .*typing_lasts_ms"):
        build_agents(loaded, ToolBackends(httpx.AsyncClient(), demo_tools()))


def test_whatsapp_through_twilio_has_no_buttons_and_no_typing(tmp_path: Path) -> None:
    body = base()
    body["tenants"]["acme"]["twilio"] = {
        "agent": "support",
        "account_sid": "AC" + "0123456789abcdef" * 2,
        "auth_token": "${TWILIO_AUTH_TOKEN}",
        "from_number": "+15017122661",
        "whatsapp_from": "+14155238886",
    }
    agents = build_agents(
        load_config(write(tmp_path, body)), ToolBackends(httpx.AsyncClient(), demo_tools())
    )
    whatsapp = agents.get("acme", "support").settings.capabilities_for(Channel.WHATSAPP)
    assert (whatsapp.max_buttons, whatsapp.typing_indicator) == (0, False)


def test_overrides_reach_the_twilio_and_telegram_senders(tmp_path: Path) -> None:
    body = base()
    acme = body["tenants"]["acme"]
    acme["capabilities"] = {"sms": {"max_text_length": 480}, "telegram": {"max_buttons": 0}}
    acme["twilio"] = {
        "agent": "support",
        "account_sid": "AC" + "0123456789abcdef" * 2,
        "auth_token": "${TWILIO_AUTH_TOKEN}",
        "from_number": "+15017122661",
    }
    acme["telegram"] = {
        "agent": "support",
        "bot_token": "${TG_BOT_TOKEN}",
        "secret_token": "${TG_SECRET_TOKEN}",
    }
    loaded = load_config(write(tmp_path, body))
    assert (
        twilio_accounts(tenant_accounts(loaded, TWILIO))["acme"].capabilities.max_text_length == 480
    )
    assert (
        telegram_accounts(tenant_accounts(loaded, TELEGRAM))["acme"].capabilities.max_buttons == 0
    )
