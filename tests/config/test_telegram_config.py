"""A tenant's Telegram bot in the configuration: secrets only as references, an agent that
exists, the Bot API default, and a sender wired for the channel."""

from pathlib import Path

import httpx

from acf.bootstrap.channels import channel_senders
from acf.channels.telegram.outbound import TelegramSender
from acf.config.load import load_config
from acf.domain.channels import Channel
from tests.config.test_config_file import base, error_of, write

BOT = {
    "agent": "support",
    "bot_token": "${TG_BOT_TOKEN}",
    "secret_token": "${TG_SECRET_TOKEN}",
}


def with_bot(**changes: str) -> dict:
    body = base()
    body["tenants"]["acme"]["telegram"] = {**BOT, **changes}
    return body


async def test_a_bot_loads_with_the_bot_api_default_and_gets_a_sender(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, with_bot()))
    bot = loaded.config.tenants["acme"].telegram
    assert bot is not None
    assert str(bot.api_base_url) == "https://api.telegram.org/"
    assert loaded.missing_secrets({}) == ["TG_BOT_TOKEN", "TG_SECRET_TOKEN"]
    async with httpx.AsyncClient() as http:
        senders = channel_senders(loaded, http)
    assert isinstance(senders[Channel.TELEGRAM], TelegramSender)


async def test_without_a_bot_there_is_no_telegram_sender(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, base()))
    async with httpx.AsyncClient() as http:
        assert Channel.TELEGRAM not in channel_senders(loaded, http)


def test_inline_secrets_are_refused(tmp_path: Path) -> None:
    token = error_of(tmp_path, with_bot(bot_token="123456:ABC-DEF"))
    assert "tenants.acme.telegram.bot_token" in token and "${NAME}" in token
    secret = error_of(tmp_path, with_bot(secret_token="my-secret"))
    assert "tenants.acme.telegram.secret_token" in secret and "${NAME}" in secret


def test_the_agent_must_exist(tmp_path: Path) -> None:
    assert "telegram.agent 'sales' is not one of the agents" in error_of(
        tmp_path, with_bot(agent="sales")
    )


def test_the_base_url_must_be_http_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    assert "tenants.acme.telegram.api_base_url" in error_of(
        tmp_path, with_bot(api_base_url="not a url")
    )
    assert "tenants.acme.telegram.webhook_url" in error_of(
        tmp_path, with_bot(webhook_url="https://x")
    )
