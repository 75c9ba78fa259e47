"""Inbound messages: what the customer sent, normalised across providers."""

from dataclasses import dataclass, field

from acf.domain.errors import InvalidValue
from acf.domain.ids import MessageId, SessionId
from acf.domain.session_key import SessionKey

MAX_TEXT_LENGTH = 16_384
MAX_PROVIDER_ID_LENGTH = 256
MAX_MEDIA_PER_MESSAGE = 10


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A reference to media held by the provider; acf stores the reference, never the bytes."""

    ref: str
    mime_type: str | None = None
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class ButtonReply:
    """The customer pressed a button (or list item) that acf sent."""

    button_id: str
    title: str | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A normalised inbound message before it is stored: no sequence number yet."""

    key: SessionKey
    provider_message_id: str
    text: str | None = None
    button: ButtonReply | None = None
    media: tuple[MediaRef, ...] = ()
    provider_timestamp_ms: int | None = None
    sender_name: str | None = None

    def __post_init__(self) -> None:
        if not self.provider_message_id:
            raise InvalidValue("provider_message_id must not be empty")
        if len(self.provider_message_id) > MAX_PROVIDER_ID_LENGTH:
            raise InvalidValue(
                f"provider_message_id is longer than {MAX_PROVIDER_ID_LENGTH} characters"
            )
        if self.text is not None and len(self.text) > MAX_TEXT_LENGTH:
            raise InvalidValue(
                f"text is {len(self.text)} characters; the limit is {MAX_TEXT_LENGTH}"
            )
        if len(self.media) > MAX_MEDIA_PER_MESSAGE:
            raise InvalidValue(f"at most {MAX_MEDIA_PER_MESSAGE} media references per message")
        if not (self.text and self.text.strip()) and self.button is None and not self.media:
            raise InvalidValue("a message needs text, a button reply or media")


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A stored message: durable, deduplicated and sequenced within its session."""

    message_id: MessageId
    session_id: SessionId
    key: SessionKey
    seq: int
    provider_message_id: str
    received_at_ms: int
    text: str | None = None
    button: ButtonReply | None = None
    media: tuple[MediaRef, ...] = field(default=())
    provider_timestamp_ms: int | None = None
    sender_name: str | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What ingress learns from the message log: the message's identity, new or original."""

    message_id: MessageId
    session_id: SessionId
    seq: int
    duplicate: bool
    held: str | None = None
    """The session's mode when it is not ``agent`` (``human``, ``cooldown``, ``blocked``):
    the message is stored and shown, and no agent turn answers it now."""
