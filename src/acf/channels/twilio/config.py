"""A tenant's Twilio Programmable Messaging account (SMS, and WhatsApp through Twilio), under
``tenants.<name>.twilio``.

```yaml
twilio:
  agent: support                         # the agent that answers these numbers
  account_sid: AC0123456789abcdef0123456789abcdef
  auth_token: ${TWILIO_AUTH_TOKEN}       # basic auth out, X-Twilio-Signature in
  from_number: "+15017122661"            # and/or messaging_service_sid: MG...
  whatsapp_from: "+14155238886"          # optional: the WhatsApp sender through Twilio
  public_url: https://acf.example.com    # optional: the base URL Twilio calls
  api_base_url: https://api.twilio.com
  max_segments: 10                       # SMS segments per outbound message (1..10)
```

Twilio signs the URL as it requested it; behind a proxy that is not the URL the server
sees, so ``public_url`` (when set) is the base the webhook URL is rebuilt on, and the base
of each outbound message's ``StatusCallback``.
"""

from pydantic import AnyHttpUrl, Field, field_validator, model_validator

from acf.config.secrets import secret_ref
from acf.config.tools import ConfigModel

E164 = r"^\+[1-9][0-9]{1,14}$"
MAX_SEGMENTS = 10
"""Twilio's Body holds at most 1,600 characters: 10 GSM-7 segments (or more UCS-2 ones)."""


class TwilioFields(ConfigModel):
    """A Twilio account's messaging senders."""

    agent: str = Field(min_length=1)
    account_sid: str = Field(pattern=r"^AC[0-9a-f]{32}$")
    auth_token: str
    from_number: str | None = Field(default=None, pattern=E164)
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-f]{32}$")
    whatsapp_from: str | None = Field(default=None, pattern=E164)
    """The tenant's WhatsApp sender through Twilio (E.164, without ``whatsapp:``)."""
    public_url: AnyHttpUrl | None = None
    api_base_url: AnyHttpUrl = AnyHttpUrl("https://api.twilio.com")
    max_segments: int = Field(default=MAX_SEGMENTS, ge=1, le=MAX_SEGMENTS)

    _secrets = field_validator("auth_token")(secret_ref)

    @model_validator(mode="after")
    def _a_sender(self) -> "TwilioFields":
        if self.from_number is None and self.messaging_service_sid is None:
            raise ValueError("expected from_number or messaging_service_sid (or both)")
        return self

    def public_base(self) -> str | None:
        """``public_url`` without its trailing slash (pydantic adds one to a bare host)."""
        return None if self.public_url is None else str(self.public_url).rstrip("/")
