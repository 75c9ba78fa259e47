"""Twilio's webhook forms as typed models: every field acf reads, checked once, so no form
of any shape reaches the parser as anything but these (``ValidationError`` becomes
``InvalidValue`` naming the field).

Facts (``../shared/reference/channels.md``): ``MessageSid`` and ``AccountSid`` are 34
characters (two letters, 32 hex digits); ``From``/``To`` are E.164 numbers, or
``whatsapp:`` and one for WhatsApp; ``Body`` holds at most 1,600 characters; ``NumMedia``
counts ``MediaUrl{N}``/``MediaContentType{N}``. Twilio adds fields over time: the unknown
ones are signed and otherwise ignored.
"""

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from acf.channels.form import Fields, single, validated
from acf.domain.errors import InvalidValue
from acf.domain.messages import MAX_MEDIA_PER_MESSAGE

MAX_BODY = 1600
MAX_ID = 256
"""A button id or a media URL longer than this is not one Twilio sends (and not storable)."""
WHATSAPP_PREFIX = "whatsapp:"
_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-f]{32}$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_WA_ID = re.compile(r"^[1-9][0-9]{1,14}$")


def _required(value: str) -> str:
    if not value:
        raise ValueError("missing or empty")
    return value


def _matching(pattern: re.Pattern[str], expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if not value:
            raise ValueError("missing or empty")
        if not pattern.match(value):
            raise ValueError(f"expected {expected}")
        return value

    return AfterValidator(check)


def _address(value: str) -> str:
    if not value:
        raise ValueError("missing or empty")
    number = value.removeprefix(WHATSAPP_PREFIX)
    if not _E164.match(number):
        if value.startswith(WHATSAPP_PREFIX):
            raise ValueError("expected whatsapp: and an E.164 number (+14155238886)")
        raise ValueError("expected an E.164 number (+14155238886)")
    return value


def _body(value: str) -> str:
    if len(value) > MAX_BODY:
        raise ValueError(f"{len(value)} characters; Twilio sends at most {MAX_BODY}")
    return value


def _num_media(value: str) -> str:
    if not value.isascii() or not value.isdigit() or int(value) > MAX_MEDIA_PER_MESSAGE:
        raise ValueError(f"expected 0 to {MAX_MEDIA_PER_MESSAGE}")
    return value


Sid = Annotated[str, _matching(_SID, "a Twilio SID (2 letters, 32 hex digits)")]
AccountSid = Annotated[str, _matching(_ACCOUNT_SID, "an account SID (AC and 32 hex digits)")]
Address = Annotated[str, AfterValidator(_address)]
Required = Annotated[str, AfterValidator(_required)]


class TwilioForm(BaseModel):
    """What every Twilio messaging webhook carries: whose account, which message."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    message_sid: Sid = Field(alias="MessageSid")
    account_sid: AccountSid = Field(alias="AccountSid")


class TwilioMessage(TwilioForm):
    """An inbound message (SMS, or WhatsApp through Twilio)."""

    sender: Address = Field(alias="From")
    to: Address = Field(alias="To")
    body: Annotated[str, AfterValidator(_body)] = Field(default="", alias="Body")
    num_media: Annotated[str, AfterValidator(_num_media)] = Field(default="0", alias="NumMedia")
    media_urls: tuple[str, ...] = ()
    media_types: tuple[str | None, ...] = ()
    messaging_service_sid: str | None = Field(default=None, alias="MessagingServiceSid")
    wa_id: str | None = Field(default=None, alias="WaId")
    profile_name: str | None = Field(default=None, alias="ProfileName")
    button_payload: str | None = Field(default=None, alias="ButtonPayload")
    button_text: str | None = Field(default=None, alias="ButtonText")

    @property
    def is_whatsapp(self) -> bool:
        return self.sender.startswith(WHATSAPP_PREFIX)

    def whatsapp_id(self) -> str:
        """The customer's WhatsApp id in Meta's ``wa_id`` form (digits, no ``+``): one
        customer whichever provider. ``WaId`` when it is valid, else the From number's."""
        if self.wa_id and _WA_ID.match(self.wa_id):
            return self.wa_id
        return self.sender.removeprefix(WHATSAPP_PREFIX).removeprefix("+")

    def service_sid(self) -> str | None:
        """``MessagingServiceSid`` when it is one (a malformed optional field is ignored)."""
        sid = self.messaging_service_sid
        return sid if sid and _SERVICE_SID.match(sid) else None


class TwilioStatus(TwilioForm):
    """A status callback for a message acf sent."""

    message_status: Required = Field(alias="MessageStatus")
    error_code: str | None = Field(default=None, alias="ErrorCode")
    error_message: str | None = Field(default=None, alias="ErrorMessage")


_MESSAGE_FIELDS = (
    "MessageSid",
    "AccountSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "MessagingServiceSid",
    "WaId",
    "ProfileName",
    "ButtonPayload",
    "ButtonText",
)
_STATUS_FIELDS = ("MessageSid", "AccountSid", "MessageStatus", "ErrorCode", "ErrorMessage")


def message_form(form: Fields) -> TwilioMessage:
    """The inbound message ``form`` carries. Raises ``InvalidValue`` naming the field."""
    media_fields = [f"MediaUrl{n}" for n in range(MAX_MEDIA_PER_MESSAGE)]
    media_fields += [f"MediaContentType{n}" for n in range(MAX_MEDIA_PER_MESSAGE)]
    fields = single(form, (*_MESSAGE_FIELDS, *media_fields))
    parsed = validated(TwilioMessage, fields)
    urls, types = [], []
    for n in range(int(parsed.num_media)):
        url = fields.get(f"MediaUrl{n}", "")
        if not url:
            raise InvalidValue(f"MediaUrl{n}: missing or empty")
        if len(url) > MAX_ID:
            raise InvalidValue(f"MediaUrl{n}: longer than {MAX_ID} characters")
        urls.append(url)
        types.append(fields.get(f"MediaContentType{n}") or None)
    return parsed.model_copy(update={"media_urls": tuple(urls), "media_types": tuple(types)})


def status_form(form: Fields) -> TwilioStatus:
    """The status callback ``form`` carries. Raises ``InvalidValue`` naming the field."""
    return validated(TwilioStatus, single(form, _STATUS_FIELDS))
