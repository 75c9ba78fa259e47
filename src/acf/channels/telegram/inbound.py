"""Telegram Bot API webhooks: the secret-token header and one Update per request.

Facts (``../shared/reference/channels.md``): ``setWebhook(secret_token)`` makes Telegram
send ``X-Telegram-Bot-Api-Secret-Token`` (1 to 256 characters of ``A-Z a-z 0-9 _ -``) with
every update; an Update carries ``update_id`` (sequential: the dedupe key) and at most one
optional field (``message``, ``edited_message``, ``callback_query``, ...); ``chat.id`` needs
64 bits. Telegram retries a webhook answered with a non-2xx, so the store's provider
message id is derived from ``update_id`` alone: a retried update is a duplicate, and an
edit (a new update) is a new message, a correction the runtime's supersede handles.
"""

import hmac
import re
from dataclasses import dataclass
from typing import Any

from acf.channels.payload_types import short, unix_ms, validated
from acf.channels.telegram import payload as tg
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import ButtonReply, MediaRef, NewMessage
from acf.domain.session_key import SessionKey

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MEDIA_KINDS = ("photo", "document", "voice", "audio", "video")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


def secret_token_valid(value: str) -> bool:
    """Telegram's rule for ``setWebhook(secret_token)``: 1 to 256 of ``A-Z a-z 0-9 _ -``."""
    return _SECRET_TOKEN.fullmatch(value) is not None


def secret_token_ok(header: str | None, secret_token: str) -> bool:
    """The header equals the configured secret token (compared in constant time)."""
    if not header:
        return False
    return hmac.compare_digest(header.encode(), secret_token.encode())


def provider_id(update_id: int) -> str:
    """The store's dedupe key of an update (unique per tenant and channel)."""
    return f"tg-update-{update_id}"


@dataclass(frozen=True, slots=True)
class TelegramUpdate:
    """One parsed Update: a message to store, or the reason it is skipped."""

    update_id: int
    message: NewMessage | None = None
    skipped: str | None = None
    callback_query_id: str | None = None
    """A button press to answer (``answerCallbackQuery``) so the client's spinner stops."""


def parse_update(tenant: str, agent: str, payload: Any, now_ms: int) -> TelegramUpdate:
    """The message an Update carries, or why it is skipped. Raises ``InvalidValue`` naming
    the first malformed field."""
    update_id = validated(tg.Update, payload, "").update_id
    update: dict[str, Any] = payload
    parsed: NewMessage | str
    if "message" in update:
        parsed = _message(tenant, agent, update_id, update["message"], "message", now_ms)
    elif "edited_message" in update:
        raw = update["edited_message"]
        parsed = _message(tenant, agent, update_id, raw, "edited_message", now_ms)
    elif "callback_query" in update:
        query = validated(tg.CallbackQuery, update["callback_query"], "callback_query")
        parsed = _callback(tenant, agent, update_id, query)
        if isinstance(parsed, str):
            return TelegramUpdate(update_id, skipped=parsed, callback_query_id=query.id)
        return TelegramUpdate(update_id, message=parsed, callback_query_id=query.id)
    else:
        kinds = sorted(k for k in update if k != "update_id")
        what = f"{short(kinds[0])} is not taken" if kinds else "carries nothing"
        parsed = f"update {update_id}: {what}"
    if isinstance(parsed, str):
        return TelegramUpdate(update_id, skipped=parsed)
    return TelegramUpdate(update_id, message=parsed)


def _message(
    tenant: str, agent: str, update_id: int, raw: Any, where: str, now_ms: int
) -> NewMessage | str:
    msg = validated(tg.Message, raw, where)
    if msg.chat.type != "private":
        return f"update {update_id}: a {msg.chat.type[:32]} chat is not taken (private chats only)"
    # An edit's own time orders it after the original (its `date` is the original's).
    edit = msg.edit_date if where == "edited_message" else None
    stamp, seconds = ("date", msg.date) if edit is None else ("edit_date", edit)
    common: dict[str, Any] = {
        "key": SessionKey(tenant, agent, str(msg.chat.id), Channel.TELEGRAM),
        "provider_message_id": provider_id(update_id),
        "provider_timestamp_ms": unix_ms(seconds, f"{where}.{stamp}", now_ms),
        "sender_name": _sender_name(msg.sender),
    }
    if msg.text is not None:
        if not msg.text.strip():
            return f"update {update_id}: the text is blank"
        return _new(where, text=msg.text, **common)
    media = _media(msg)
    if media is None:
        kinds = ", ".join(("text", *MEDIA_KINDS))
        return f"update {update_id}: a message with none of {kinds} is not taken"
    return _new(where, media=(media,), **common)


def _media(msg: tg.Message) -> MediaRef | None:
    if msg.photo is not None:  # the sizes of one photo: keep the largest
        index = max(range(len(msg.photo)), key=lambda i: (_area(msg.photo or [], i), i))
        return MediaRef(msg.photo[index].file_id, None, msg.caption)
    for file in (msg.document, msg.voice, msg.audio, msg.video):
        if file is not None:
            return MediaRef(file.file_id, file.mime_type, msg.caption)
    return None


def _area(sizes: list[tg.PhotoSize], index: int) -> int:
    size = sizes[index]
    return (size.width or 0) * (size.height or 0)


def _callback(tenant: str, agent: str, update_id: int, query: tg.CallbackQuery) -> NewMessage | str:
    if query.data is None:
        return f"update {update_id}: a callback query without data (a game) is not taken"
    if query.message is None:
        return f"update {update_id}: a button under an inline-mode message is not taken"
    msg = validated(tg.CallbackMessage, query.message, "callback_query.message")
    if msg.chat.type != "private":
        return f"update {update_id}: a {msg.chat.type[:32]} chat is not taken (private chats only)"
    return _new(
        "callback_query",
        key=SessionKey(tenant, agent, str(msg.chat.id), Channel.TELEGRAM),
        provider_message_id=provider_id(update_id),
        button=ButtonReply(query.data, _button_title(msg.reply_markup, query.data)),
        sender_name=_sender_name(query.sender),
    )


def _new(where: str, **fields: Any) -> NewMessage:
    try:
        return NewMessage(**fields)
    except InvalidValue as exc:  # e.g. a text over the store's limit
        raise InvalidValue(f"{where}: {exc}") from None


def _button_title(markup: dict[str, Any] | None, data: str) -> str | None:
    """The pressed button's text, from the keyboard of the message it sits under (a
    malformed keyboard or button only loses the title)."""
    rows = (markup or {}).get("inline_keyboard")
    for row in rows if isinstance(rows, list) else []:
        for raw in row if isinstance(row, list) else []:
            try:
                button = validated(tg.InlineButton, raw, "button")
            except InvalidValue:
                continue
            if button.callback_data == data:
                return button.text
    return None


def _sender_name(user: tg.User | None) -> str | None:
    if user is None:
        return None
    return " ".join(n for n in (user.first_name, user.last_name) if n) or None
