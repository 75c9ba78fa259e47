"""Replies out through the WhatsApp Cloud API (Graph API ``/{phone_number_id}/messages``).

A reply's text goes out in parts of at most 4,096 characters, cut at sentence ends. Its
buttons become reply buttons when WhatsApp can show them (at most 3, titles of at most 20
characters and unique, a body of at most 1,024 characters); otherwise the text ends with
numbered options. A 2xx is acceptance (``messages[0].id``, the wamid), not delivery; a 4xx
other than 408 and 429 is a definite refusal; anything else is retried by the relay. A row
split in parts that fails after its first part is sent again whole on retry.

Outside the 24-hour customer-service window (counted from the customer's last message),
WhatsApp takes only approved templates: the row goes out as the tenant's configured
template (the reply's text as its body parameter, when the template has one), or is
refused definitely with the reason, which the relay records on the row and in its
``response.failed`` event.

While a turn runs, ``show_typing`` marks the customer's newest message read and shows
the typing indicator (one call; WhatsApp clears it on the reply or after 25 s).
"""

import re
import time
from collections.abc import Callable, Mapping, Sequence
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
MAX_BUTTONS = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
BUTTON_BODY_LIMIT = 1024
WHATSAPP = DEFAULT_CAPABILITIES[Channel.WHATSAPP]
SERVICE_WINDOW_MS = 24 * 3600 * 1000
TEMPLATE_PARAMETER_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class WindowTemplate:
    """An approved template sent instead of a reply outside the 24-hour window."""

    name: str
    language: str
    text_parameter: bool = False
    """Whether the template's body has one ``{{1}}`` that takes the reply's text."""


@dataclass(frozen=True, slots=True)
class WhatsAppAccount:
    phone_number_id: str
    access_token: str
    """The bearer token, or a ``${NAME}`` reference read from the environment at send time."""
    api_base_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    window_template: WindowTemplate | None = None
    capabilities: ChannelCapabilities = WHATSAPP
    """The tenant's (acf's defaults with its overrides)."""

    @property
    def messages_url(self) -> str:
        base = self.api_base_url.rstrip("/")
        return f"{base}/{self.api_version}/{self.phone_number_id}/messages"


def _buttons_fit(text: str, buttons: Sequence[Button], caps: ChannelCapabilities) -> bool:
    """Reply buttons when the tenant's capabilities and WhatsApp's own limits allow them."""
    return (
        not shown_as_options(caps, buttons)
        and len(buttons) <= MAX_BUTTONS
        and 0 < len(text.strip()) <= BUTTON_BODY_LIMIT
        and all(0 < len(b.title) <= BUTTON_TITLE_LIMIT for b in buttons)
        and all(0 < len(b.button_id) <= BUTTON_ID_LIMIT for b in buttons)
    )


def outside_window(last_message_at_ms: int | None, now_ms: int) -> bool:
    """Whether only templates may be sent: 24 hours or more since the customer last wrote
    (a session with no message from the customer has no window either)."""
    return last_message_at_ms is None or now_ms - last_message_at_ms >= SERVICE_WINDOW_MS


def template_body(to: str, template: WindowTemplate, text: str) -> dict[str, Any]:
    """The Graph API body of ``template``; its parameter is the reply's text on one line
    (WhatsApp refuses new lines, tabs and long runs of spaces in parameters), cut to 1,024
    characters."""
    body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if template.text_parameter:
        line = re.sub(r"\s+", " ", text).strip()
        if len(line) > TEMPLATE_PARAMETER_LIMIT:
            line = line[: TEMPLATE_PARAMETER_LIMIT - 1].rstrip() + "…"
        parameters = [{"type": "text", "text": line}]
        body["components"] = [{"type": "body", "parameters": parameters}]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": body,
    }


def message_bodies(
    to: str, payload: Mapping[str, Any], caps: ChannelCapabilities = WHATSAPP
) -> list[dict[str, Any]]:
    """The Graph API request bodies that carry one outbox row (pure), shaped by the
    tenant's capabilities within WhatsApp's limits."""
    text = str(payload.get("text") or "")
    buttons = [Button(str(b["id"]), str(b["title"])) for b in payload.get("buttons") or []]
    if payload.get("media"):
        raise InvalidValue("media replies are not sent on WhatsApp by acf yet")
    head = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
    if buttons and _buttons_fit(text, buttons, caps):
        action = {
            "buttons": [
                {"type": "reply", "reply": {"id": b.button_id, "title": b.title}} for b in buttons
            ]
        }
        interactive = {"type": "button", "body": {"text": text.strip()}, "action": action}
        return [{**head, "type": "interactive", "interactive": interactive}]
    if buttons:
        text = numbered_options(text, buttons)
    parts = split_text(text, min(TEXT_LIMIT, caps.max_text_length))
    if not parts:
        raise InvalidValue("the reply has no text to send")
    return [{**head, "type": "text", "text": {"preview_url": False, "body": p}} for p in parts]


def wall_ms() -> int:
    return int(time.time() * 1000)


class WhatsAppCloudSender:
    def __init__(
        self,
        http: httpx.AsyncClient,
        accounts: Mapping[TenantId, WhatsAppAccount],
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self._http = http
        self._accounts = dict(accounts)
        self._now_ms = now_ms
        """Wall-clock time: the window is counted against the provider's timestamps."""

    def _account(self, tenant: TenantId) -> WhatsAppAccount:
        account = self._accounts.get(tenant)
        if account is None:
            raise DeliveryError(f"tenant {tenant} has no WhatsApp number", True)
        return account

    async def send(self, message: OutboundMessage) -> SendReceipt:
        account = self._account(message.key.tenant)
        to = message.key.customer
        try:
            token = resolve_secrets(account.access_token, what="whatsapp")
            if outside_window(message.customer_last_message_at_ms, self._now_ms()):
                bodies = [self._template(account, to, message)]
            else:
                bodies = message_bodies(to, message.payload, account.capabilities)
        except InvalidValue as exc:
            raise DeliveryError(str(exc), definite=True) from None
        first = await send_parts(
            bodies, message.parts_sent, lambda body: self._post(account, token, body)
        )
        return SendReceipt(first)

    def _template(
        self, account: WhatsAppAccount, to: str, message: OutboundMessage
    ) -> dict[str, Any]:
        if account.window_template is None:
            raise InvalidValue(
                "outside WhatsApp's 24-hour customer-service window (the customer last "
                f"wrote at {message.customer_last_message_at_ms} ms) and the tenant has no "
                "whatsapp.window_template: only an approved template may be sent"
            )
        return template_body(to, account.window_template, str(message.payload.get("text", "")))

    async def show_typing(self, key: SessionKey, last_inbound_id: str) -> None:
        """Mark ``last_inbound_id`` read and show the typing indicator."""
        account = self._account(key.tenant)
        try:
            token = resolve_secrets(account.access_token, what="whatsapp")
        except InvalidValue as exc:
            raise DeliveryError(str(exc), definite=True) from None
        body = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": last_inbound_id,
            "typing_indicator": {"type": "text"},
        }
        await self._post(account, token, body, expect_id=False)

    async def _post(
        self, account: WhatsAppAccount, token: str, body: dict[str, Any], expect_id: bool = True
    ) -> str:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            response = await self._http.post(account.messages_url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"WhatsApp unreachable: {exc!r}", definite=False) from None
        data = json_or_none(response)
        if response.is_success and not expect_id:
            return ""
        if response.is_success:
            messages = data.get("messages") if isinstance(data, dict) else None
            if isinstance(messages, list) and messages and isinstance(messages[0], dict):
                return str(messages[0].get("id") or "")
            raise DeliveryError("WhatsApp accepted without a message id", definite=False)
        code = response.status_code
        raise DeliveryError(
            f"WhatsApp answered {code}: {_error(data)}",
            definite=definite(code),
            retry_after_ms=retry_after_ms(response),
        )


def _error(data: Any) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code', '?')} {error.get('message', '')}".strip()
    return "no error details"
