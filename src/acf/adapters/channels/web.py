"""The web-chat channel's JSON format, normalised into a ``NewMessage``."""

import hashlib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from acf.domain.channels import Channel
from acf.domain.errors import FieldProblem, InvalidMessage, InvalidValue, MessageTooLarge
from acf.domain.messages import (
    MAX_MEDIA_PER_MESSAGE,
    MAX_PROVIDER_ID_LENGTH,
    MAX_TEXT_LENGTH,
    ButtonReply,
    MediaRef,
    NewMessage,
)
from acf.domain.session_key import MAX_PART_LENGTH, SessionKey
from acf.ports.channel_sender import OutboundMessage, SendReceipt


class WebButton(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=256)
    title: str | None = Field(default=None, max_length=256)


class WebMedia(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: str = Field(min_length=1, max_length=2048)
    mime_type: str | None = Field(default=None, max_length=128)
    caption: str | None = Field(default=None, max_length=4096)


_WEB_ID_PREFIX = "web|"
_DIGEST_CHARS = 16
MAX_CLIENT_ID_LENGTH = MAX_PROVIDER_ID_LENGTH - len(_WEB_ID_PREFIX) - _DIGEST_CHARS - 1


def web_provider_id(agent: str, customer: str, client_message_id: str) -> str:
    """The dedupe id of a web-chat message: a client's ids are unique per customer only
    (a widget may number its messages 1, 2, 3…), so the id is scoped by agent and customer:
    ``web|<digest of agent and customer>|<client id>``."""
    digest = hashlib.sha256(f"{agent}\x00{customer}".encode()).hexdigest()[:_DIGEST_CHARS]
    return f"{_WEB_ID_PREFIX}{digest}|{client_message_id}"


def client_message_id_of(provider_message_id: str) -> str | None:
    """The client's own id inside a web-chat dedupe id; None for other channels' ids."""
    prefix, _, rest = provider_message_id.partition("|")
    digest, bar, client_id = rest.partition("|")
    if prefix + "|" != _WEB_ID_PREFIX or not bar or len(digest) != _DIGEST_CHARS:
        return None
    return client_id


class WebChatMessage(BaseModel):
    """One message posted by the web chat widget."""

    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=MAX_PART_LENGTH)
    customer: str = Field(min_length=1, max_length=MAX_PART_LENGTH)
    client_message_id: str = Field(min_length=1, max_length=MAX_CLIENT_ID_LENGTH)
    text: str | None = None
    button: WebButton | None = None
    media: list[WebMedia] = Field(default_factory=list, max_length=MAX_MEDIA_PER_MESSAGE)
    sent_at_ms: int | None = Field(default=None, ge=0)
    sender_name: str | None = Field(default=None, max_length=256)


def _problems(exc: ValidationError) -> list[FieldProblem]:
    return [FieldProblem(".".join(str(p) for p in err["loc"]), err["msg"]) for err in exc.errors()]


def parse_web_message(tenant: str, payload: Mapping[str, Any]) -> NewMessage:
    """Validate a web-chat payload; raises ``InvalidMessage`` naming each bad field."""
    text = payload.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT_LENGTH:
        raise MessageTooLarge(
            [FieldProblem("text", f"{len(text)} characters; the limit is {MAX_TEXT_LENGTH}")]
        )
    try:
        body = WebChatMessage.model_validate(payload)
    except ValidationError as exc:
        raise InvalidMessage(_problems(exc)) from None
    try:
        return NewMessage(
            key=SessionKey(tenant, body.agent, body.customer, Channel.WEB),
            provider_message_id=web_provider_id(body.agent, body.customer, body.client_message_id),
            text=body.text,
            button=None if body.button is None else ButtonReply(body.button.id, body.button.title),
            media=tuple(MediaRef(m.ref, m.mime_type, m.caption) for m in body.media),
            provider_timestamp_ms=body.sent_at_ms,
            sender_name=body.sender_name,
        )
    except InvalidValue as exc:
        raise InvalidMessage([FieldProblem("", str(exc))]) from None


class WebChannelSender:
    """The web chat has no provider: a reply is delivered once it is committed and
    recorded, and the page reads it from the session's event stream."""

    async def send(self, message: OutboundMessage) -> SendReceipt:
        return SendReceipt(f"web-{message.outbox_id}")
