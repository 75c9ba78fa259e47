"""The Telegram Bot API Update as strict models (``../shared/reference/channels.md``).

An Update carries ``update_id`` and at most one of its optional fields; acf reads
``message``, ``edited_message`` and ``callback_query``. ``chat.id`` needs 64 bits; ``date``
is unix seconds. Fields acf only shows (names, captions, MIME types, a button's text) are
``Lenient``: wrong, they are dropped and the message is still taken.
"""

from typing import Annotated, Any

from pydantic import Field

from acf.channels.payload_types import Id, Int64, Lenient, NonEmpty, Strict, Text


class Update(Strict):
    update_id: Annotated[int, Field(ge=0, lt=2**63)]


class Chat(Strict):
    id: Int64
    type: NonEmpty


class User(Strict):
    first_name: Lenient[Text] = None
    last_name: Lenient[Text] = None


class PhotoSize(Strict):
    file_id: Id
    width: Lenient[int] = None
    height: Lenient[int] = None


class File(Strict):
    """A document, voice note, audio or video: acf keeps the reference."""

    file_id: Id
    mime_type: Lenient[Text] = None


class Message(Strict):
    message_id: int
    chat: Chat
    date: int
    edit_date: Lenient[int] = None
    sender: Lenient[User] = Field(None, alias="from")
    text: Text | None = None
    caption: Lenient[Text] = None
    photo: Annotated[list[PhotoSize], Field(min_length=1)] | None = None
    document: File | None = None
    voice: File | None = None
    audio: File | None = None
    video: File | None = None


class InlineButton(Strict):
    text: NonEmpty
    callback_data: Text


class CallbackMessage(Strict):
    """The message a pressed button sits under (the bot's own)."""

    chat: Chat
    reply_markup: Lenient[dict[str, Any]] = None


class CallbackQuery(Strict):
    id: Id
    data: Id | None = None
    message: dict[str, Any] | None = None
    sender: Lenient[User] = Field(None, alias="from")
