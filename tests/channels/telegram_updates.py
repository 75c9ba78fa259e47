"""Telegram Bot API Updates in the documented shapes (reference/channels.md)."""

from typing import Any

SECRET_TOKEN = "tg-Secret_token-123"
CHAT_ID = 111
USER = {"id": CHAT_ID, "is_bot": False, "first_name": "Ada", "last_name": "Lovelace"}


def chat(chat_id: int = CHAT_ID, kind: str = "private") -> dict[str, Any]:
    return {"id": chat_id, "type": kind, "first_name": "Ada"}


def message(
    message_id: int = 1, at: int = 1441645532, chat_id: int = CHAT_ID, **fields: Any
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "from": USER,
        "chat": chat(chat_id),
        "date": at,
        **fields,
    }


def text_update(update_id: int, text: str, at: int = 1441645532, **fields: Any) -> dict[str, Any]:
    return {"update_id": update_id, "message": message(update_id, at, text=text, **fields)}


def button_press(
    update_id: int, data: str, title: str = "Yes", query_id: str = "4382bfdwdsb323b2d9"
) -> dict[str, Any]:
    """A press of an inline-keyboard button under a message the bot sent."""
    keyboard = {"inline_keyboard": [[{"text": title, "callback_data": data}]]}
    bot_message = {
        "message_id": 77,
        "from": {"id": 999, "is_bot": True, "first_name": "Shop bot"},
        "chat": chat(),
        "date": 1441645500,
        "text": "Refund order 42?",
        "reply_markup": keyboard,
    }
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id,
            "from": USER,
            "message": bot_message,
            "chat_instance": "-8123",
            "data": data,
        },
    }
