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

from acf.adapters.channels.json_fields import as_list, as_object, as_text
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.messages import ButtonReply, MediaRef, NewMessage
from acf.domain.session_key import SessionKey

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MEDIA_KINDS = ("photo", "document", "voice", "audio", "video")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_INT64 = 2**63


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


def parse_update(tenant: str, agent: str, payload: Any) -> TelegramUpdate:
    """The message an Update carries, or why it is skipped. Raises ``InvalidValue`` naming
    the first malformed field."""
    update = as_object(payload, "body")
    update_id = _int(update.get("update_id"), "update_id")
    if update_id < 0:
        raise InvalidValue("update_id: expected a non-negative integer")
    parsed: NewMessage | str
    if "message" in update:
        parsed = _message(tenant, agent, update_id, update["message"], "message", False)
    elif "edited_message" in update:
        raw = update["edited_message"]
        parsed = _message(tenant, agent, update_id, raw, "edited_message", True)
    elif "callback_query" in update:
        query = as_object(update["callback_query"], "callback_query")
        query_id = as_text(query.get("id"), "callback_query.id")
        parsed = _callback(tenant, agent, update_id, query)
        if isinstance(parsed, str):
            return TelegramUpdate(update_id, skipped=parsed, callback_query_id=query_id)
        return TelegramUpdate(update_id, message=parsed, callback_query_id=query_id)
    else:
        kinds = sorted(k for k in update if k != "update_id")
        what = f"{kinds[0]!r} is not taken" if kinds else "carries nothing"
        parsed = f"update {update_id}: {what}"
    if isinstance(parsed, str):
        return TelegramUpdate(update_id, skipped=parsed)
    return TelegramUpdate(update_id, message=parsed)


def _message(
    tenant: str, agent: str, update_id: int, raw: Any, where: str, edited: bool
) -> NewMessage | str:
    msg = as_object(raw, where)
    _int(msg.get("message_id"), f"{where}.message_id")
    chat_id, chat_type = _chat(msg.get("chat"), f"{where}.chat")
    if chat_type != "private":
        return f"update {update_id}: a {chat_type} chat is not taken (private chats only)"
    # An edit's own time orders it after the original (its `date` is the original's).
    stamp = "edit_date" if edited and "edit_date" in msg else "date"
    common: dict[str, Any] = {
        "key": SessionKey(tenant, agent, str(chat_id), Channel.TELEGRAM),
        "provider_message_id": provider_id(update_id),
        "provider_timestamp_ms": _int(msg.get(stamp), f"{where}.{stamp}") * 1000,
        "sender_name": _sender_name(msg.get("from")),
    }
    if "text" in msg:
        text = as_text(msg["text"], f"{where}.text")
        if not text.strip():
            return f"update {update_id}: the text is blank"
        return _new(where, text=text, **common)
    media = _media(msg, where)
    if media is None:
        kinds = ", ".join(("text", *MEDIA_KINDS))
        return f"update {update_id}: a message with none of {kinds} is not taken"
    return _new(where, media=(media,), **common)


def _media(msg: dict[str, Any], where: str) -> MediaRef | None:
    caption = msg.get("caption") if isinstance(msg.get("caption"), str) else None
    for kind in MEDIA_KINDS:
        if kind not in msg:
            continue
        if kind == "photo":  # the sizes of one photo: keep the largest
            sizes = as_list(msg["photo"], f"{where}.photo")
            if not sizes:
                raise InvalidValue(f"{where}.photo: expected at least one size")
            index = max(range(len(sizes)), key=lambda i: (_area(sizes[i], where, i), i))
            file_id = as_object(sizes[index], f"{where}.photo[{index}]").get("file_id")
            return MediaRef(as_text(file_id, f"{where}.photo[{index}].file_id"), None, caption)
        media = as_object(msg[kind], f"{where}.{kind}")
        mime = media.get("mime_type") if isinstance(media.get("mime_type"), str) else None
        return MediaRef(as_text(media.get("file_id"), f"{where}.{kind}.file_id"), mime, caption)
    return None


def _area(size: Any, where: str, index: int) -> int:
    size = as_object(size, f"{where}.photo[{index}]")
    width, height = size.get("width"), size.get("height")
    return width * height if isinstance(width, int) and isinstance(height, int) else 0


def _callback(tenant: str, agent: str, update_id: int, query: dict[str, Any]) -> NewMessage | str:
    if "data" not in query:
        return f"update {update_id}: a callback query without data (a game) is not taken"
    data = as_text(query["data"], "callback_query.data")
    if query.get("message") is None:
        return f"update {update_id}: a button under an inline-mode message is not taken"
    msg = as_object(query["message"], "callback_query.message")
    chat_id, chat_type = _chat(msg.get("chat"), "callback_query.message.chat")
    if chat_type != "private":
        return f"update {update_id}: a {chat_type} chat is not taken (private chats only)"
    return _new(
        "callback_query",
        key=SessionKey(tenant, agent, str(chat_id), Channel.TELEGRAM),
        provider_message_id=provider_id(update_id),
        button=ButtonReply(data, _button_title(msg.get("reply_markup"), data)),
        sender_name=_sender_name(query.get("from")),
    )


def _new(where: str, **fields: Any) -> NewMessage:
    try:
        return NewMessage(**fields)
    except InvalidValue as exc:  # e.g. a text over the store's limit
        raise InvalidValue(f"{where}: {exc}") from None


def _button_title(markup: Any, data: str) -> str | None:
    """The pressed button's text, from the keyboard of the message it sits under."""
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    for row in rows if isinstance(rows, list) else []:
        for button in row if isinstance(row, list) else []:
            if isinstance(button, dict) and button.get("callback_data") == data:
                text = button.get("text")
                return text if isinstance(text, str) and text else None
    return None


def _chat(value: Any, where: str) -> tuple[int, str]:
    chat = as_object(value, where)
    chat_id = _int(chat.get("id"), f"{where}.id")
    if not -_INT64 <= chat_id < _INT64:
        raise InvalidValue(f"{where}.id: expected a 64-bit integer")
    return chat_id, as_text(chat.get("type"), f"{where}.type")


def _sender_name(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    names = [value.get("first_name"), value.get("last_name")]
    return " ".join(n for n in names if isinstance(n, str) and n) or None


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidValue(f"{where}: expected an integer")
    return value
