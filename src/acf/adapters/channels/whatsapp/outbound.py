"""Replies out through the WhatsApp Cloud API (Graph API ``/{phone_number_id}/messages``).

A reply's text goes out in parts of at most 4,096 characters, cut at sentence ends. Its
buttons become reply buttons when WhatsApp can show them (at most 3, titles of at most 20
characters and unique, a body of at most 1,024 characters); otherwise the text ends with
numbered options. A 2xx is acceptance (``messages[0].id``, the wamid), not delivery; a 4xx
other than 408 and 429 is a definite refusal; anything else is retried by the relay. A row
split in parts that fails after its first part is sent again whole on retry.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from acf.config.secrets import resolve_secrets
from acf.domain.errors import InvalidValue
from acf.domain.formatting import numbered_options, split_text
from acf.domain.ids import TenantId
from acf.domain.replies import Button
from acf.ports.channel_sender import DeliveryError, OutboundMessage, SendReceipt

TEXT_LIMIT = 4096
MAX_BUTTONS = 3
BUTTON_TITLE_LIMIT = 20
BUTTON_ID_LIMIT = 256
BUTTON_BODY_LIMIT = 1024
TRANSIENT_4XX = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class WhatsAppAccount:
    phone_number_id: str
    access_token: str
    """The bearer token, or a ``${NAME}`` reference read from the environment at send time."""
    api_base_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"

    @property
    def messages_url(self) -> str:
        base = self.api_base_url.rstrip("/")
        return f"{base}/{self.api_version}/{self.phone_number_id}/messages"


def _buttons_fit(text: str, buttons: Sequence[Button]) -> bool:
    titles = [b.title for b in buttons]
    return (
        0 < len(buttons) <= MAX_BUTTONS
        and 0 < len(text.strip()) <= BUTTON_BODY_LIMIT
        and all(0 < len(t) <= BUTTON_TITLE_LIMIT for t in titles)
        and len(set(titles)) == len(titles)
        and all(0 < len(b.button_id) <= BUTTON_ID_LIMIT for b in buttons)
    )


def message_bodies(to: str, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Graph API request bodies that carry one outbox row (pure)."""
    text = str(payload.get("text") or "")
    buttons = [Button(str(b["id"]), str(b["title"])) for b in payload.get("buttons") or []]
    if payload.get("media"):
        raise InvalidValue("media replies are not sent on WhatsApp by acf yet")
    head = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
    if buttons and _buttons_fit(text, buttons):
        action = {
            "buttons": [
                {"type": "reply", "reply": {"id": b.button_id, "title": b.title}} for b in buttons
            ]
        }
        interactive = {"type": "button", "body": {"text": text.strip()}, "action": action}
        return [{**head, "type": "interactive", "interactive": interactive}]
    if buttons:
        text = numbered_options(text, buttons)
    parts = split_text(text, TEXT_LIMIT)
    if not parts:
        raise InvalidValue("the reply has no text to send")
    return [{**head, "type": "text", "text": {"preview_url": False, "body": p}} for p in parts]


class WhatsAppCloudSender:
    def __init__(self, http: httpx.AsyncClient, accounts: Mapping[TenantId, WhatsAppAccount]):
        self._http = http
        self._accounts = dict(accounts)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        account = self._accounts.get(message.key.tenant)
        if account is None:
            raise DeliveryError(f"tenant {message.key.tenant} has no WhatsApp number", True)
        try:
            bodies = message_bodies(message.key.customer, message.payload)
            token = resolve_secrets(account.access_token, what="whatsapp")
        except InvalidValue as exc:
            raise DeliveryError(str(exc), definite=True) from None
        ids = [await self._post(account, token, body) for body in bodies]
        return SendReceipt(ids[0])

    async def _post(self, account: WhatsAppAccount, token: str, body: dict[str, Any]) -> str:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            response = await self._http.post(account.messages_url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"WhatsApp unreachable: {exc!r}", definite=False) from None
        data = _json(response)
        if response.is_success:
            messages = data.get("messages") if isinstance(data, dict) else None
            if isinstance(messages, list) and messages and isinstance(messages[0], dict):
                return str(messages[0].get("id") or "")
            raise DeliveryError("WhatsApp accepted without a message id", definite=False)
        code = response.status_code
        definite = 400 <= code < 500 and code not in TRANSIENT_4XX
        raise DeliveryError(f"WhatsApp answered {code}: {_error(data)}", definite=definite)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error(data: Any) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code', '?')} {error.get('message', '')}".strip()
    return "no error details"
