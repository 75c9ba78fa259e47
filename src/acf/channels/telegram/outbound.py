"""Replies out through the Telegram Bot API (``POST {base}/bot{token}/{method}``).

A reply's text goes out with ``sendMessage`` in parts of at most 4,096 characters, cut at
sentence ends. Its buttons become an inline keyboard under the last part (one button per
row, ``callback_data`` = the button id, at most 64 bytes of UTF-8); when one does not fit,
all of them become numbered options. The Bot API answers ``{"ok": true, "result": ...}``
or ``{"ok": false, "error_code", "description", "parameters": {"retry_after"}}``: a 4xx
other than 408 and 429 (400 bad request, 403 the bot was blocked) is a definite refusal;
429, 5xx and transport errors are retried by the relay. The bot token is in the URL path:
it never appears in an error message (httpx's request log names the URL at INFO level).
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from acf.adapters.channels.provider_http import (
    definite,
    json_or_none,
    retry_after_ms,
    send_parts,
)
from acf.config.secrets import resolve_secrets
from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.formatting import numbered_options, shown_as_options, split_text
from acf.domain.ids import TenantId
from acf.domain.replies import Button
from acf.domain.session_key import SessionKey
from acf.ports.channel_sender import DeliveryError, OutboundMessage, SendReceipt

TEXT_LIMIT = 4096
CALLBACK_DATA_BYTES = 64
_CHAT_ID = re.compile(r"-?[0-9]{1,19}")


@dataclass(frozen=True, slots=True)
class TelegramAccount:
    bot_token: str
    """The bot token, or a ``${NAME}`` reference read from the environment at send time."""
    api_base_url: str = "https://api.telegram.org"
    capabilities: ChannelCapabilities = DEFAULT_CAPABILITIES[Channel.TELEGRAM]
    """The tenant's (acf's defaults with its overrides): text length, buttons."""

    def method_url(self, token: str, method: str) -> str:
        return f"{self.api_base_url.rstrip('/')}/bot{token}/{method}"


def chat_id_of(customer: str) -> int:
    """The chat id a Telegram session's customer id holds (``chat.id``, 64 bits)."""
    if not _CHAT_ID.fullmatch(customer):
        raise InvalidValue(f"customer {customer!r} is not a Telegram chat id")
    return int(customer)


def _buttons_fit(text: str, buttons: Sequence[Button]) -> bool:
    return bool(text.strip()) and all(
        b.title.strip() and 0 < len(b.button_id.encode()) <= CALLBACK_DATA_BYTES for b in buttons
    )


def message_bodies(
    chat_id: int,
    payload: Mapping[str, Any],
    caps: ChannelCapabilities = DEFAULT_CAPABILITIES[Channel.TELEGRAM],
) -> list[dict[str, Any]]:
    """The ``sendMessage`` request bodies that carry one outbox row (pure)."""
    text = str(payload.get("text") or "")
    buttons = [Button(str(b["id"]), str(b["title"])) for b in payload.get("buttons") or []]
    if payload.get("media"):
        raise InvalidValue("media replies are not sent on Telegram by acf yet")
    keyboard = None
    if buttons and not shown_as_options(caps, buttons) and _buttons_fit(text, buttons):
        rows = [[{"text": b.title, "callback_data": b.button_id}] for b in buttons]
        keyboard = {"inline_keyboard": rows}
    elif buttons:
        text = numbered_options(text, buttons)
    parts = split_text(text, min(TEXT_LIMIT, caps.max_text_length))
    if not parts:
        raise InvalidValue("the reply has no text to send")
    bodies: list[dict[str, Any]] = [{"chat_id": chat_id, "text": p} for p in parts]
    if keyboard is not None:
        bodies[-1]["reply_markup"] = keyboard
    return bodies


class TelegramSender:
    """``ChannelSender`` and ``TypingSender`` for Telegram bots, one account per tenant."""

    def __init__(self, http: httpx.AsyncClient, accounts: Mapping[TenantId, TelegramAccount]):
        self._http = http
        self._accounts = dict(accounts)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        account = self._account(message.key.tenant)
        try:
            chat_id = chat_id_of(message.key.customer)
            bodies = message_bodies(chat_id, message.payload, account.capabilities)
            token = resolve_secrets(account.bot_token, what="telegram")
        except InvalidValue as exc:
            raise DeliveryError(str(exc), definite=True) from None

        async def post(body: dict[str, Any]) -> str:
            result = await self._call(account, token, "sendMessage", body)
            message_id = result.get("message_id") if isinstance(result, dict) else None
            if not isinstance(message_id, int):
                raise DeliveryError("Telegram accepted without a message_id", definite=False)
            return f"{chat_id}:{message_id}"

        return SendReceipt(await send_parts(bodies, message.parts_sent, post))

    def reachable(self, tenant: TenantId) -> frozenset[Channel]:
        """Telegram for the tenants with a bot (``acf.ports.channel_reach``)."""
        return frozenset({Channel.TELEGRAM}) if tenant in self._accounts else frozenset()

    async def show_typing(self, key: SessionKey, last_inbound_id: str) -> None:
        """``sendChatAction`` typing (Telegram shows it for 5 s or until the reply)."""
        try:
            chat_id = chat_id_of(key.customer)
        except InvalidValue as exc:
            raise DeliveryError(str(exc), definite=True) from None
        body = {"chat_id": chat_id, "action": "typing"}
        await self._call_resolved(key.tenant, "sendChatAction", body)

    async def answer_callback(self, tenant: TenantId, callback_query_id: str) -> None:
        """``answerCallbackQuery``: the pressed button's spinner stops in the client."""
        body = {"callback_query_id": callback_query_id}
        await self._call_resolved(tenant, "answerCallbackQuery", body)

    def _account(self, tenant: TenantId) -> TelegramAccount:
        account = self._accounts.get(tenant)
        if account is None:
            raise DeliveryError(f"tenant {tenant} has no Telegram bot", definite=True)
        return account

    async def _call_resolved(self, tenant: TenantId, method: str, body: dict[str, Any]) -> None:
        account = self._account(tenant)
        try:
            token = resolve_secrets(account.bot_token, what="telegram")
        except InvalidValue as exc:
            raise DeliveryError(str(exc), definite=True) from None
        await self._call(account, token, method, body)

    async def _call(
        self, account: TelegramAccount, token: str, method: str, body: dict[str, Any]
    ) -> Any:
        """The ``result`` of one Bot API call; ``DeliveryError`` without the token."""
        try:
            response = await self._http.post(account.method_url(token, method), json=body)
        except httpx.HTTPError as exc:
            error = f"Telegram unreachable ({method}): {exc!r}"
            raise DeliveryError(_redact(error, token), definite=False) from None
        data = json_or_none(response)
        if response.is_success and isinstance(data, dict) and data.get("ok") is True:
            return data.get("result")
        code = response.status_code
        if isinstance(data, dict) and isinstance(data.get("error_code"), int):
            code = data["error_code"]
        error = f"Telegram {method} answered {code}: {_error(data)}"
        parameters = data.get("parameters") if isinstance(data, dict) else None
        wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
        raise DeliveryError(
            _redact(error, token),
            definite=definite(code),
            retry_after_ms=retry_after_ms(response, wait),
        )


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<bot-token>") if token else text


def _error(data: Any) -> str:
    if not isinstance(data, dict):
        return "no error details"
    text = str(data.get("description") or "no description")
    parameters = data.get("parameters")
    if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int):
        text += f" (retry after {parameters['retry_after']} s)"
    return text
