"""WhatsApp Cloud API webhooks: the signature, the verify handshake and the envelope.

Facts (``../shared/reference/channels.md``): ``X-Hub-Signature-256: sha256=<hex>`` is an
HMAC-SHA256 of the raw body with the app secret; a batch holds entries, each with changes,
each with ``messages`` and/or ``statuses``; Meta retries and does not order, so messages are
deduplicated on their wamid (the store's provider message id) and sorted by timestamp.
"""

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acf.adapters.channels.json_fields import as_list, as_object, as_text
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import ButtonReply, MediaRef, NewMessage
from acf.domain.session_key import SessionKey
from acf.domain.signals import DeliveryStatus, DeliveryStatusSignal

SIGNATURE_HEADER = "X-Hub-Signature-256"
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
STATUSES = ("sent", "delivered", "read", "failed")


def signature_ok(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    """The header is ``sha256=`` + the hex HMAC-SHA256 of the raw body (constant time)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def verify_challenge(params: Mapping[str, str], verify_token: str) -> str | None:
    """The ``hub.challenge`` to echo when the subscription's token matches, else None."""
    if params.get("hub.mode") != "subscribe":
        return None
    token = params.get("hub.verify_token", "")
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        return None
    return params.get("hub.challenge")


@dataclass(slots=True)
class WhatsAppBatch:
    messages: list[NewMessage] = field(default_factory=list)
    statuses: list[DeliveryStatusSignal] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Messages acf does not take (reactions, system notices...), each with its reason."""


def parse_webhook(tenant: str, agent: str, payload: Any) -> WhatsAppBatch:
    """The messages (sorted by provider timestamp) and statuses of one webhook body.
    Raises ``InvalidValue`` naming the first malformed field."""
    body = as_object(payload, "body")
    if body.get("object") != "whatsapp_business_account":
        raise InvalidValue("object: expected 'whatsapp_business_account'")
    batch = WhatsAppBatch()
    for e, entry in enumerate(as_list(body.get("entry"), "entry")):
        changes = as_object(entry, f"entry[{e}]").get("changes")
        for c, change in enumerate(as_list(changes, "changes")):
            where = f"entry[{e}].changes[{c}]"
            value = as_object(as_object(change, where).get("value"), f"{where}.value")
            names = _contact_names(value)
            for m, raw in enumerate(value.get("messages") or []):
                parsed = _message(tenant, agent, raw, names, f"{where}.value.messages[{m}]")
                if isinstance(parsed, str):
                    batch.skipped.append(parsed)
                else:
                    batch.messages.append(parsed)
            for s, raw in enumerate(value.get("statuses") or []):
                batch.statuses.append(_status(tenant, raw, f"{where}.value.statuses[{s}]"))
    batch.messages.sort(key=lambda msg: msg.provider_timestamp_ms or 0)
    batch.statuses.sort(key=lambda st: st.at_ms)
    return batch


def _contact_names(value: Mapping[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in value.get("contacts") or []:
        if isinstance(contact, dict) and isinstance(contact.get("wa_id"), str):
            name = (contact.get("profile") or {}).get("name")
            if isinstance(name, str) and name:
                names[contact["wa_id"]] = name
    return names


def _message(
    tenant: str, agent: str, raw: Any, names: Mapping[str, str], where: str
) -> NewMessage | str:
    msg = as_object(raw, where)
    sender = as_text(msg.get("from"), f"{where}.from")
    wamid = as_text(msg.get("id"), f"{where}.id")
    at_ms = _timestamp_ms(msg.get("timestamp"), f"{where}.timestamp")
    kind = as_text(msg.get("type"), f"{where}.type")
    key = SessionKey(tenant, agent, sender, Channel.WHATSAPP)
    common: dict[str, Any] = {
        "key": key,
        "provider_message_id": wamid,
        "provider_timestamp_ms": at_ms,
        "sender_name": names.get(sender),
    }
    try:
        if kind == "text":
            body = as_object(msg.get("text"), f"{where}.text").get("body")
            return NewMessage(text=as_text(body, f"{where}.text.body"), **common)
        if kind in ("interactive", "button"):
            return NewMessage(button=_button(msg, kind, where), **common)
        if kind in MEDIA_TYPES:
            media = as_object(msg.get(kind), f"{where}.{kind}")
            ref = MediaRef(
                as_text(media.get("id"), f"{where}.{kind}.id"),
                media.get("mime_type"),
                media.get("caption"),
            )
            return NewMessage(media=(ref,), **common)
    except InvalidValue as exc:
        raise InvalidValue(f"{where}: {exc}") from None
    return f"{wamid}: message type {kind!r} is not taken"


def _button(msg: Mapping[str, Any], kind: str, where: str) -> ButtonReply:
    if kind == "button":  # a template's quick-reply button
        button = as_object(msg.get("button"), f"{where}.button")
        payload = button.get("payload") or button.get("text")
        return ButtonReply(as_text(payload, f"{where}.button.payload"), button.get("text"))
    interactive = as_object(msg.get("interactive"), f"{where}.interactive")
    reply_kind = interactive.get("type")
    if reply_kind not in ("button_reply", "list_reply"):
        raise InvalidValue(f"{where}.interactive.type: expected button_reply or list_reply")
    reply = as_object(interactive.get(reply_kind), f"{where}.interactive.{reply_kind}")
    return ButtonReply(as_text(reply.get("id"), f"{where}.interactive.id"), reply.get("title"))


def _status(tenant: str, raw: Any, where: str) -> DeliveryStatusSignal:
    st = as_object(raw, where)
    status = as_text(st.get("status"), f"{where}.status")
    if status not in STATUSES:
        raise InvalidValue(f"{where}.status: expected one of {', '.join(STATUSES)}")
    errors = st.get("errors") or []
    error = None
    if errors and isinstance(errors[0], dict):
        error = f"{errors[0].get('code')}: {errors[0].get('title', '')}".strip()
    return DeliveryStatusSignal(
        tenant,
        as_text(st.get("id"), f"{where}.id"),
        DeliveryStatus(status),
        _timestamp_ms(st.get("timestamp"), f"{where}.timestamp"),
        error,
    )


def _timestamp_ms(value: Any, where: str) -> int:
    try:
        return int(value) * 1000
    except (TypeError, ValueError):
        raise InvalidValue(f"{where}: expected unix seconds") from None
