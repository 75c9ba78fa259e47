"""A tenant's support mailbox, under ``tenants.<name>.email``.

```yaml
email:
  agent: support                        # the agent that answers this address
  address: support@acme.example         # where customers write; From of every reply
  aliases: [help@acme.example]          # optional: other addresses its routes forward
  display_name: Acme Support
  inbound:
    mailgun:
      signing_key: ${MAILGUN_SIGNING_KEY}   # checks signature/timestamp/token
    sendgrid:
      basic_auth: ${SENDGRID_PARSE_AUTH}    # "user:password" in the Parse URL
  smtp:
    host: smtp.acme.example
    port: 587
    username: ${SMTP_USER}
    password: ${SMTP_PASSWORD}
    starttls: true
    timeout_s: 30
```

SendGrid's Inbound Parse signs nothing, so its only credential is the HTTP basic auth put
in the Parse URL (``https://user:password@host/...``); without ``basic_auth`` anyone who
knows the route can post mail, which the configuration allows but does not recommend.

Only mail delivered to ``address`` or one of ``aliases`` (``@acme.example`` for every
address of a domain) is taken; any other is refused and audited (a route forwarding more
than the tenant's own addresses, or a Parse URL copied to another domain).
"""

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from acf.config.secrets import secret_ref
from acf.config.tools import ConfigModel

ADDRESS = r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$"
ALIAS = r"^[^@\s<>]*@[^@\s<>]+\.[^@\s<>]+$"
"""An address, or ``@domain``."""


class MailgunInbound(ConfigModel):
    """Mailgun routes forwarding to ``/v1/channels/email/{tenant}/mailgun``."""

    signing_key: str
    """The webhook signing key (a ``${NAME}`` reference)."""

    _secrets = field_validator("signing_key")(secret_ref)


class SendGridInbound(ConfigModel):
    """SendGrid Inbound Parse posting to ``/v1/channels/email/{tenant}/sendgrid``."""

    basic_auth: str | None = None
    """``user:password`` (a ``${NAME}`` reference) expected as ``Authorization: Basic``."""

    @field_validator("basic_auth")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else secret_ref(value)


class InboundFields(ConfigModel):
    mailgun: MailgunInbound | None = None
    sendgrid: SendGridInbound | None = None

    @model_validator(mode="after")
    def _one_at_least(self) -> "InboundFields":
        if self.mailgun is None and self.sendgrid is None:
            raise ValueError("expected mailgun and/or sendgrid")
        return self


class SmtpFields(ConfigModel):
    """The relay replies leave through."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    """Upgrade the connection with STARTTLS (port 587)."""
    use_tls: bool = False
    """Connect over TLS from the start (port 465); excludes ``starttls``."""
    timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("username", "password")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else secret_ref(value)

    @model_validator(mode="after")
    def _coherent(self) -> "SmtpFields":
        if self.use_tls and self.starttls:
            raise ValueError("use_tls and starttls exclude each other")
        if (self.username is None) != (self.password is None):
            raise ValueError("expected both username and password, or neither")
        return self


class EmailFields(ConfigModel):
    """A support address: mail in through Mailgun and/or SendGrid, replies out by SMTP."""

    agent: str = Field(min_length=1)
    address: str = Field(pattern=ADDRESS, max_length=254)
    aliases: list[Annotated[str, Field(pattern=ALIAS, max_length=254)]] = Field(
        default_factory=list
    )
    """Other addresses the tenant takes mail at (``@domain``: every address there)."""
    display_name: str | None = Field(default=None, min_length=1, max_length=128)
    inbound: InboundFields
    smtp: SmtpFields

    @field_validator("address")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("aliases")
    @classmethod
    def _lower_all(cls, values: list[str]) -> list[str]:
        return [value.lower() for value in values]

    @property
    def domain(self) -> str:
        """The domain of ``address``: the right-hand side of our Message-IDs."""
        return self.address.rpartition("@")[2]
