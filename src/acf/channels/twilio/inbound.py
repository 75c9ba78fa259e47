"""Twilio messaging webhooks: the form body, inbound messages and status callbacks (pure).

Facts (``../shared/reference/channels.md``): Twilio POSTs ``application/x-www-form-urlencoded``
fields: ``MessageSid`` (34 characters, the dedupe key), ``AccountSid``, ``From``, ``To``,
``Body`` (at most 1,600 characters), ``NumMedia`` with ``MediaUrl{N}``/``MediaContentType{N}``,
and for WhatsApp ``From=whatsapp:+<number>``, ``WaId``, ``ProfileName``, ``ButtonPayload``/
``ButtonText``. Status callbacks carry ``MessageSid``, ``MessageStatus`` and, when it
failed, ``ErrorCode``; they carry no timestamp, so the arrival time stands in for one.
The fields are read through the typed models of ``payload``.
"""

from collections.abc import Mapping

from acf.channels.form import Fields, parse_urlencoded
from acf.channels.twilio.payload import (
    MAX_BODY,
    MAX_ID,
    TwilioMessage,
    message_form,
    status_form,
)
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import ButtonReply, MediaRef, NewMessage
from acf.domain.session_key import SessionKey
from acf.domain.signals import DeliveryStatus, DeliveryStatusSignal

__all__ = ["MAX_BODY", "parse_form", "parse_message", "parse_status"]

STATUSES: Mapping[str, DeliveryStatus] = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.FAILED,
}
PASSING_STATUSES = frozenset(
    {"accepted", "scheduled", "queued", "sending", "receiving", "received", "canceled"}
)
"""Steps before ``sent`` (or of inbound messages): nothing for a reply's status to show."""


def parse_form(raw: bytes) -> list[tuple[str, str]]:
    """The fields of a form-encoded body, in order, values exactly as sent (blank ones
    too: they are signed). Raises ``InvalidValue`` for a body that is not such a form."""
    return parse_urlencoded(raw)


def parse_message(tenant: str, agent: str, form: Fields | TwilioMessage) -> NewMessage:
    """The inbound message of one webhook. Raises ``InvalidValue`` naming the field."""
    fields = form if isinstance(form, TwilioMessage) else message_form(form)
    if fields.is_whatsapp:
        channel, customer = Channel.WHATSAPP, fields.whatsapp_id()
    else:
        channel, customer = Channel.SMS, fields.sender
    media = tuple(
        MediaRef(url, kind) for url, kind in zip(fields.media_urls, fields.media_types, strict=True)
    )
    button = _button(fields)
    body = fields.body
    if not body.strip() and not media and button is None:
        raise InvalidValue("Body: empty, and the message has no media (NumMedia) or button")
    return NewMessage(
        key=SessionKey(tenant, agent, customer, channel),
        provider_message_id=fields.message_sid,
        text=body if body.strip() else None,
        button=button,
        media=media,
        sender_name=fields.profile_name or None,
    )


def parse_status(tenant: str, form: Fields, arrived_at_ms: int) -> DeliveryStatusSignal | None:
    """The status a callback reports, or None for a step that changes nothing shown
    (queued, sending...). Raises ``InvalidValue`` naming the field."""
    fields = status_form(form)
    name = fields.message_status
    if name in PASSING_STATUSES:
        return None
    status = STATUSES.get(name)
    if status is None:
        known = ", ".join(sorted({*STATUSES, *PASSING_STATUSES}))
        raise InvalidValue(f"MessageStatus: {name[:40]!r} is not one of {known}")
    error = None
    if status is DeliveryStatus.FAILED:
        details = [fields.error_code, fields.error_message]
        error = " ".join(d for d in details if d) or None
    return DeliveryStatusSignal(tenant, fields.message_sid, status, arrived_at_ms, error)


def _button(fields: TwilioMessage) -> ButtonReply | None:
    """The button pressed; an id too long to be one acf sent is ignored (the message's
    text, if any, still counts)."""
    button_id = fields.button_payload or fields.button_text
    if not button_id or len(button_id) > MAX_ID:
        return None
    return ButtonReply(button_id, fields.button_text or None)
