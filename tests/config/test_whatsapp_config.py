"""A tenant's WhatsApp number in the configuration: secrets only as references, an agent
that exists, and the references listed when the environment lacks them."""

from pathlib import Path

from acf.channels.whatsapp.outbound import WindowTemplate
from acf.channels.whatsapp.provider import whatsapp_account
from acf.config.load import load_config
from tests.config.test_config_file import base, error_of, write

NUMBER = {
    "agent": "support",
    "phone_number_id": "106540352242922",
    "app_secret": "${WA_APP_SECRET}",
    "verify_token": "${WA_VERIFY_TOKEN}",
    "access_token": "${WA_ACCESS_TOKEN}",
}


def with_number(**changes: str) -> dict:
    body = base()
    body["tenants"]["acme"]["whatsapp"] = {**NUMBER, **changes}
    return body


def test_a_number_loads_with_the_graph_api_defaults(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, with_number()))
    number = loaded.config.tenants["acme"].whatsapp
    assert number is not None
    assert str(number.api_base_url) == "https://graph.facebook.com/"
    assert number.api_version == "v21.0"
    assert loaded.missing_secrets({}) == ["WA_ACCESS_TOKEN", "WA_APP_SECRET", "WA_VERIFY_TOKEN"]


def test_an_inline_secret_is_refused(tmp_path: Path) -> None:
    message = error_of(tmp_path, with_number(access_token="EAAG-real-token"))
    assert "tenants.acme.whatsapp.access_token" in message
    assert "${NAME}" in message


def test_the_agent_must_exist(tmp_path: Path) -> None:
    assert "whatsapp.agent 'sales' is not one of the agents" in error_of(
        tmp_path, with_number(agent="sales")
    )


def test_the_phone_number_id_is_digits(tmp_path: Path) -> None:
    assert "tenants.acme.whatsapp.phone_number_id" in error_of(
        tmp_path, with_number(phone_number_id="+1 555")
    )


def test_a_window_template_is_read_and_checked(tmp_path: Path) -> None:
    template = {"name": "reply_waiting", "language": "en_US", "text_parameter": True}
    body = with_number()
    body["tenants"]["acme"]["whatsapp"]["window_template"] = template
    number = load_config(write(tmp_path, body)).config.tenants["acme"].whatsapp
    assert number is not None and number.window_template is not None
    assert whatsapp_account(number).window_template == WindowTemplate(
        "reply_waiting", "en_US", text_parameter=True
    )
    body["tenants"]["acme"]["whatsapp"]["window_template"] = {**template, "name": "Reply Waiting"}
    assert "tenants.acme.whatsapp.window_template.name" in error_of(tmp_path, body)
