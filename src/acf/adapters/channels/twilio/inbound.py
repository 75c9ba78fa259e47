"""Twilio messaging webhooks: the form body, inbound messages and status callbacks (pure).

Facts (``../shared/reference/channels.md``): Twilio POSTs ``application/x-www-form-urlencoded``
fields: ``MessageSid`` (34 characters, the dedupe key), ``From``, ``To``, ``Body`` (at most
1,600 characters), ``NumMedia`` with ``MediaUrl{N}``/``MediaContentType{N}``, and for
WhatsApp ``From=whatsapp:+<number>``, ``WaId``, ``ProfileName``, ``ButtonPayload``/
``ButtonText``. Status callbacks carry ``MessageSid``, ``MessageStatus`` and, when it
failed, ``ErrorCode``; they carry no timestamp, so the arrival time stands in for one.
"""

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

from acf.adapters.channels.twilio.signature import Form
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import MAX_MEDIA_PER_MESSAGE, ButtonReply, MediaRef, NewMessage
from acf.domain.session_key import SessionKey
from acf.domain.signals import DeliveryStatus, DeliveryStatusSignal

MAX_BODY = 1600
MAX_FIELDS = 1000
WHATSAPP_PREFIX = "whatsapp:"
_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_WA_ID = re.compile(r"^[1-9][0-9]{1,14}$")

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
    try:
        text = raw.decode("ascii")
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise InvalidValue("the body is not form-encoded UTF-8") from None
    except ValueError as exc:
        raise InvalidValue(f"the body is not form-encoded: {exc}") from None


def parse_message(tenant: str, agent: str, form: Form) -> NewMessage:
    """The inbound message of one webhook. Raises ``InvalidValue`` naming the field."""
    sid = _sid(form, "MessageSid")
    channel, customer = _sender(form)
    body = _field(form, "Body") or ""
    if len(body) > MAX_BODY:
        raise InvalidValue(f"Body: {len(body)} characters; Twilio sends at most {MAX_BODY}")
    media = _media(form)
    payload = _field(form, "ButtonPayload") or _field(form, "ButtonText")
    button = ButtonReply(payload, _field(form, "ButtonText") or None) if payload else None
    if not body.strip() and not media and button is None:
        raise InvalidValue("Body: empty, and the message has no media (NumMedia) or button")
    return NewMessage(
        key=SessionKey(tenant, agent, customer, channel),
        provider_message_id=sid,
        text=body if body.strip() else None,
        button=button,
        media=media,
        sender_name=_field(form, "ProfileName") or None,
    )


def parse_status(tenant: str, form: Form, arrived_at_ms: int) -> DeliveryStatusSignal | None:
    """The status a callback reports, or None for a step that changes nothing shown
    (queued, sending...). Raises ``InvalidValue`` naming the field."""
    sid = _sid(form, "MessageSid")
    name = _required(form, "MessageStatus")
    if name in PASSING_STATUSES:
        return None
    status = STATUSES.get(name)
    if status is None:
        known = ", ".join(sorted({*STATUSES, *PASSING_STATUSES}))
        raise InvalidValue(f"MessageStatus: {name!r} is not one of {known}")
    error = None
    if status is DeliveryStatus.FAILED:
        details = [_field(form, "ErrorCode"), _field(form, "ErrorMessage")]
        error = " ".join(d for d in details if d) or None
    return DeliveryStatusSignal(tenant, sid, status, arrived_at_ms, error)


def _sender(form: Form) -> tuple[Channel, str]:
    sender = _required(form, "From")
    if sender.startswith(WHATSAPP_PREFIX):
        number = sender.removeprefix(WHATSAPP_PREFIX)
        if not _E164.match(number):
            raise InvalidValue("From: expected whatsapp: and an E.164 number (+14155238886)")
        wa_id = _field(form, "WaId")
        if wa_id and not _WA_ID.match(wa_id):
            raise InvalidValue("WaId: expected the number's digits, without +")
        # The form Meta's Cloud API uses for wa_id: one customer, whichever provider.
        return Channel.WHATSAPP, wa_id or number.removeprefix("+")
    if not _E164.match(sender):
        raise InvalidValue("From: expected an E.164 number (+14155238886)")
    return Channel.SMS, sender


def _media(form: Form) -> tuple[MediaRef, ...]:
    raw = _field(form, "NumMedia") or "0"
    if not raw.isdigit() or int(raw) > MAX_MEDIA_PER_MESSAGE:
        raise InvalidValue(f"NumMedia: expected 0 to {MAX_MEDIA_PER_MESSAGE}")
    return tuple(
        MediaRef(_required(form, f"MediaUrl{n}"), _field(form, f"MediaContentType{n}") or None)
        for n in range(int(raw))
    )


def _sid(form: Form, name: str) -> str:
    value = _required(form, name)
    if not _SID.match(value):
        raise InvalidValue(f"{name}: expected a Twilio SID (2 letters, 32 hex digits)")
    return value


def _required(form: Form, name: str) -> str:
    value = _field(form, name)
    if not value:
        raise InvalidValue(f"{name}: missing or empty")
    return value


def _field(form: Form, name: str) -> str | None:
    values = [value for key, value in form if key == name]
    if len(values) > 1:
        raise InvalidValue(f"{name}: sent {len(values)} times; expected once")
    return values[0] if values else None
