"""The WhatsApp Cloud API webhook body as strict models (``../shared/reference/channels.md``).

Read in layers so that a wrong item refuses only itself: the envelope (``object``,
``entry``), each entry's ``changes``, each change's ``value`` (its ``metadata`` names the
number it is addressed to), then each message and status on its own. A sender is a wa_id:
the customer's phone number in international form without ``+``, 6 to 15 digits (E.164
allows at most 15). Provider timestamps are unix seconds, as a string of digits (Meta's
form) or an integer.
"""

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from acf.channels.payload_types import Id, Lenient, NonEmpty, Strict, Text

WA_ID_DIGITS = (6, 15)


def _wa_id(value: str) -> str:
    low, high = WA_ID_DIGITS
    if not (value.isascii() and value.isdigit() and low <= len(value) <= high):
        raise ValueError(f"expected a wa_id (the sender's number): {low} to {high} digits")
    return value


def _seconds(value: Any) -> Any:
    if isinstance(value, str):  # Meta's form: a string of digits
        if not (value.isascii() and value.isdigit() and len(value) <= 12):
            raise ValueError("expected unix seconds (digits)")
        return int(value)
    return value


WaId = Annotated[str, AfterValidator(_wa_id)]
Seconds = Annotated[int, BeforeValidator(_seconds)]


class Envelope(Strict):
    object: Literal["whatsapp_business_account"]
    entry: list[Any]


class Entry(Strict):
    changes: list[Any]


class Change(Strict):
    value: dict[str, Any]


class Metadata(Strict):
    phone_number_id: Id


class Value(Strict):
    """One change's value: each list is read item by item."""

    metadata: Metadata | None = None
    contacts: Lenient[list[Any]] = None
    messages: list[Any] | None = None
    statuses: list[Any] | None = None


class Profile(Strict):
    name: Lenient[NonEmpty] = None


class Contact(Strict):
    wa_id: WaId
    profile: Lenient[Profile] = None


class MessageHead(Strict):
    """What every message has; its content is read by its ``type``."""

    sender: WaId = Field(alias="from")
    id: Id
    timestamp: Seconds
    type: NonEmpty


class TextContent(Strict):
    body: NonEmpty


class Reply(Strict):
    """A pressed reply button or list row: the id acf sent, and its title."""

    id: Id
    title: Lenient[Text] = None


class Interactive(Strict):
    type: Literal["button_reply", "list_reply"]
    button_reply: Reply | None = None
    list_reply: Reply | None = None


class TemplateButton(Strict):
    """A template's quick-reply button: its payload (else its text) is the button id."""

    payload: Lenient[Id] = None
    text: Lenient[Text] = None


class Media(Strict):
    id: Id
    mime_type: Lenient[Text] = None
    caption: Lenient[Text] = None


class StatusError(Strict):
    code: Lenient[int] = None
    title: Lenient[Text] = None


class Status(Strict):
    id: Id
    status: Literal["sent", "delivered", "read", "failed"]
    timestamp: Seconds
    errors: Lenient[list[Any]] = None
