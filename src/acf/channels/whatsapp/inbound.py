"""WhatsApp Cloud API webhooks: the signature, the verify handshake and the envelope.

Facts (``../shared/reference/channels.md``): ``X-Hub-Signature-256: sha256=<hex>`` is an
HMAC-SHA256 of the raw body with the app secret; a batch holds entries, each with changes,
each with ``messages`` and/or ``statuses``; Meta retries and does not order, so messages are
deduplicated on their wamid (the store's provider message id) and sorted by timestamp.

Meta retries every non-200 for days, so only a body that is not the envelope is refused;
an item in it that acf cannot take (malformed, of a kind acf does not take, or addressed to
a number that is not the tenant's) is skipped with its reason and the rest is taken.
"""

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acf.channels.payload_types import MAX_ID_LENGTH, short, unix_ms, validated
from acf.channels.whatsapp import payload as wa
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import ButtonReply, MediaRef, NewMessage
from acf.domain.session_key import SessionKey
from acf.domain.signals import DeliveryStatus, DeliveryStatusSignal

SIGNATURE_HEADER = "X-Hub-Signature-256"
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})


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


@dataclass(frozen=True, slots=True)
class WhatsAppNumber:
    """The tenant's number a webhook is for: only what is addressed to it is taken."""

    tenant: str
    agent: str
    phone_number_id: str


@dataclass(slots=True)
class WhatsAppBatch:
    messages: list[NewMessage] = field(default_factory=list)
    statuses: list[DeliveryStatusSignal] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Items acf does not take (reactions, malformed items), each with its reason."""
    refused: list[str] = field(default_factory=list)
    """Changes addressed to a number that is not the tenant's, each with its reason."""


def parse_webhook(number: WhatsAppNumber, payload: Any, now_ms: int) -> WhatsAppBatch:
    """The messages (sorted by provider timestamp) and statuses of one webhook body, and
    the items skipped. Raises ``InvalidValue`` naming the field when the body is not the
    envelope."""
    envelope = validated(wa.Envelope, payload, "")
    batch = WhatsAppBatch()
    for e, raw in enumerate(envelope.entry):
        try:
            entry = validated(wa.Entry, raw, f"entry[{e}]")
        except InvalidValue as exc:
            batch.skipped.append(str(exc))
            continue
        for c, change in enumerate(entry.changes):
            _change(number, change, f"entry[{e}].changes[{c}]", now_ms, batch)
    batch.messages.sort(key=lambda msg: msg.provider_timestamp_ms or 0)
    batch.statuses.sort(key=lambda st: st.at_ms)
    return batch


def _change(
    number: WhatsAppNumber, raw: Any, where: str, now_ms: int, batch: WhatsAppBatch
) -> None:
    try:
        change = validated(wa.Change, raw, where)
        value = validated(wa.Value, change.value, f"{where}.value")
    except InvalidValue as exc:
        batch.skipped.append(str(exc))
        return
    messages, statuses = value.messages or [], value.statuses or []
    if not messages and not statuses:
        return
    addressed = value.metadata.phone_number_id if value.metadata else None
    if addressed != number.phone_number_id:
        batch.refused.append(
            f"{where}: {len(messages)} message(s) and {len(statuses)} status(es) addressed "
            f"to phone number id {short(addressed)}, not the tenant's {number.phone_number_id}"
        )
        return
    names = _contact_names(value.contacts)
    for m, item in enumerate(messages):
        try:
            parsed = _message(number, item, names, f"{where}.value.messages[{m}]", now_ms)
        except InvalidValue as exc:
            parsed = str(exc)
        if isinstance(parsed, str):
            batch.skipped.append(parsed)
        else:
            batch.messages.append(parsed)
    for s, item in enumerate(statuses):
        try:
            batch.statuses.append(
                _status(number.tenant, item, f"{where}.value.statuses[{s}]", now_ms)
            )
        except InvalidValue as exc:
            batch.skipped.append(str(exc))


def _contact_names(contacts: list[Any] | None) -> dict[str, str]:
    """The profile names by wa_id; a malformed contact only loses its name."""
    names: dict[str, str] = {}
    for raw in contacts or []:
        try:
            contact = validated(wa.Contact, raw, "contacts")
        except InvalidValue:
            continue
        if contact.profile is not None and contact.profile.name:
            names[contact.wa_id] = contact.profile.name
    return names


def _message(
    number: WhatsAppNumber, raw: Any, names: Mapping[str, str], where: str, now_ms: int
) -> NewMessage | str:
    head = validated(wa.MessageHead, raw, where)
    kind = head.type
    common: dict[str, Any] = {
        "key": SessionKey(number.tenant, number.agent, head.sender, Channel.WHATSAPP),
        "provider_message_id": head.id,
        "provider_timestamp_ms": unix_ms(head.timestamp, f"{where}.timestamp", now_ms),
        "sender_name": names.get(head.sender),
    }
    try:
        if kind == "text":
            text = validated(wa.TextContent, raw.get("text"), f"{where}.text")
            return NewMessage(text=text.body, **common)
        if kind in ("interactive", "button"):
            return NewMessage(button=_button(raw, kind, where), **common)
        if kind in MEDIA_TYPES:
            media = validated(wa.Media, raw.get(kind), f"{where}.{kind}")
            return NewMessage(media=(MediaRef(media.id, media.mime_type, media.caption),), **common)
    except InvalidValue as exc:
        message = str(exc)
        raise InvalidValue(
            message if message.startswith(where) else f"{where}: {message}"
        ) from None
    return f"{head.id}: message type {short(kind)} is not taken"


def _button(raw: Mapping[str, Any], kind: str, where: str) -> ButtonReply:
    if kind == "button":  # a template's quick-reply button
        button = validated(wa.TemplateButton, raw.get("button"), f"{where}.button")
        button_id = button.payload or button.text
        if not button_id or len(button_id) > MAX_ID_LENGTH:
            raise InvalidValue(
                f"{where}.button: expected a payload or a text of 1 to {MAX_ID_LENGTH} characters"
            )
        return ButtonReply(button_id, button.text or None)
    interactive = validated(wa.Interactive, raw.get("interactive"), f"{where}.interactive")
    reply = (
        interactive.button_reply if interactive.type == "button_reply" else interactive.list_reply
    )
    if reply is None:
        raise InvalidValue(f"{where}.interactive.{interactive.type}: expected an object")
    return ButtonReply(reply.id, reply.title or None)


def _status(tenant: str, raw: Any, where: str, now_ms: int) -> DeliveryStatusSignal:
    status = validated(wa.Status, raw, where)
    return DeliveryStatusSignal(
        tenant,
        status.id,
        DeliveryStatus(status.status),
        unix_ms(status.timestamp, f"{where}.timestamp", now_ms),
        _status_error(status.errors),
    )


def _status_error(errors: list[Any] | None) -> str | None:
    """The first error's ``code: title``; a malformed one is no error text."""
    if not errors:
        return None
    try:
        error = validated(wa.StatusError, errors[0], "errors[0]")
    except InvalidValue:
        return None
    if error.code is None:
        return error.title or None
    return f"{error.code}: {error.title or ''}".strip()
