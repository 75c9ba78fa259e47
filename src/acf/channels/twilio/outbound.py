"""Replies out through Twilio's Messages REST API: SMS, and WhatsApp through Twilio.

``POST {api_base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded, HTTP
basic auth (the Account SID and the auth token). A reply's text goes out in parts of at most
``max_segments`` SMS segments and 1,600 characters, cut at sentence ends; buttons become
numbered options (SMS has none; acf sends WhatsApp through Twilio as plain messages);
media URLs ride on the first part as ``MediaUrl``. A 2xx is acceptance (the JSON ``sid``),
not delivery; 429 and 5xx and transport errors are retried by the relay; any other 4xx is a
definite refusal, with Twilio's ``code`` and ``message``. A row split in parts that fails
after its first part resumes after the parts accepted (``send_parts``).

WhatsApp through Twilio keeps WhatsApp's 24-hour customer-service window: outside it only
an approved Content template may be sent, which acf does not send through Twilio yet, so
such a row is refused definitely with the reason (and may fall back) instead of being
accepted by Twilio and failed later (error 63016).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from acf.adapters.channels.provider_http import (
    definite,
    json_or_none,
    retry_after_ms,
    send_parts,
)
from acf.channels.twilio.segments import sms_parts
from acf.channels.whatsapp.outbound import outside_window, wall_ms
from acf.config.secrets import resolve_secrets
from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.formatting import numbered_options, split_text
from acf.domain.ids import TenantId
from acf.domain.replies import Button
from acf.domain.session_key import SessionKey
from acf.ports.channel_sender import DeliveryError, OutboundMessage, SendReceipt

MAX_MEDIA = 10


@dataclass(frozen=True, slots=True)
class TwilioAccount:
    account_sid: str
    auth_token: str
    """The auth token, or a ``${NAME}`` reference read from the environment at send time."""
    from_number: str | None = None
    messaging_service_sid: str | None = None
    whatsapp_from: str | None = None
    status_callback: str | None = None
    """Where Twilio posts this tenant's delivery statuses (none without a public URL)."""
    api_base_url: str = "https://api.twilio.com"
    max_segments: int = 10
    capabilities: ChannelCapabilities = DEFAULT_CAPABILITIES[Channel.SMS]
    """The tenant's SMS capabilities: ``max_text_length`` caps each message too."""

    @property
    def messages_url(self) -> str:
        base = self.api_base_url.rstrip("/")
        return f"{base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"


def _addresses(account: TwilioAccount, key: SessionKey) -> dict[str, str]:
    if key.channel is Channel.WHATSAPP:
        if account.whatsapp_from is None:
            raise InvalidValue(f"tenant {key.tenant} has no twilio.whatsapp_from")
        return {"To": f"whatsapp:+{key.customer}", "From": f"whatsapp:{account.whatsapp_from}"}
    if key.channel is not Channel.SMS:
        raise InvalidValue(f"Twilio does not send on channel {key.channel}")
    if account.from_number is not None:
        return {"To": key.customer, "From": account.from_number}
    if account.messaging_service_sid is not None:
        return {"To": key.customer, "MessagingServiceSid": account.messaging_service_sid}
    raise InvalidValue(f"tenant {key.tenant} has no Twilio sender")


def message_forms(
    account: TwilioAccount, key: SessionKey, payload: Mapping[str, Any]
) -> list[list[tuple[str, str]]]:
    """The form fields of each Messages API request that carries one outbox row (pure)."""
    text = str(payload.get("text") or "")
    buttons = [Button(str(b["id"]), str(b["title"])) for b in payload.get("buttons") or []]
    media = [str(url) for url in payload.get("media") or []]
    if len(media) > MAX_MEDIA:
        raise InvalidValue(f"Twilio takes at most {MAX_MEDIA} media URLs per message")
    if buttons:
        text = numbered_options(text, buttons)
    limit = account.capabilities.max_text_length
    parts = [
        piece
        for part in sms_parts(text, account.max_segments)
        for piece in (split_text(part, limit) if len(part) > limit else [part])
    ] or ([""] if media else [])
    if not parts:
        raise InvalidValue("the reply has no text to send")
    head = list(_addresses(account, key).items())
    if account.status_callback is not None:
        head.append(("StatusCallback", account.status_callback))
    forms = [[*head, ("Body", part)] for part in parts]
    forms[0] += [("MediaUrl", url) for url in media]
    return forms


class TwilioSender:
    def __init__(
        self,
        http: httpx.AsyncClient,
        accounts: Mapping[TenantId, TwilioAccount],
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self._http = http
        self._accounts = dict(accounts)
        self._now_ms = now_ms

    async def send(self, message: OutboundMessage) -> SendReceipt:
        account = self._accounts.get(message.key.tenant)
        if account is None:
            raise DeliveryError(f"tenant {message.key.tenant} has no Twilio account", True)
        try:
            forms = message_forms(account, message.key, message.payload)
            token = resolve_secrets(account.auth_token, what="twilio")
        except InvalidValue as exc:
            raise DeliveryError(str(exc), definite=True) from None
        whatsapp = message.key.channel is Channel.WHATSAPP
        if whatsapp and outside_window(message.customer_last_message_at_ms, self._now_ms()):
            raise DeliveryError(
                "outside WhatsApp's 24-hour customer-service window: only an approved "
                "template may be sent, and acf sends no templates through Twilio",
                definite=True,
            )
        first = await send_parts(
            forms, message.parts_sent, lambda form: self._post(account, token, form)
        )
        return SendReceipt(first)

    def reachable(self, tenant: TenantId) -> frozenset[Channel]:
        """SMS for the tenants with a Twilio account, and WhatsApp for those with a
        ``whatsapp_from`` (``acf.ports.channel_reach``)."""
        account = self._accounts.get(tenant)
        if account is None:
            return frozenset()
        if account.whatsapp_from is None:
            return frozenset({Channel.SMS})
        return frozenset({Channel.SMS, Channel.WHATSAPP})

    async def _post(self, account: TwilioAccount, token: str, form: list[tuple[str, str]]) -> str:
        auth = (account.account_sid, token)
        try:
            response = await self._http.post(account.messages_url, data=_encoded(form), auth=auth)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"Twilio unreachable: {exc!r}", definite=False) from None
        data = json_or_none(response)
        if response.is_success:
            sid = data.get("sid") if isinstance(data, dict) else None
            if isinstance(sid, str) and sid:
                return sid
            raise DeliveryError("Twilio accepted without a message sid", definite=False)
        code = response.status_code
        raise DeliveryError(
            f"Twilio answered {code}: {_error(data)}",
            definite=definite(code),
            retry_after_ms=retry_after_ms(response),
        )


def _encoded(form: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """httpx's form shape: a repeated field (``MediaUrl``) as a list."""
    fields: dict[str, str | list[str]] = {}
    for name, value in form:
        if name in fields:
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    return fields


def _error(data: Any) -> str:
    if isinstance(data, dict) and ("code" in data or "message" in data):
        return f"{data.get('code', '?')} {data.get('message', '')}".strip()
    return "no error details"


def status_callback_url(public_base: str, tenant: str) -> str:
    """Where Twilio posts a tenant's delivery statuses: its status webhook under the base
    URL Twilio reaches acf by."""
    return f"{public_base.rstrip('/')}/v1/channels/twilio/{tenant}/status"
