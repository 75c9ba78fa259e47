"""A tenant's WhatsApp Cloud API number (Meta), under ``tenants.<name>.whatsapp``.

```yaml
whatsapp:
  agent: support                       # the agent that answers this number
  phone_number_id: "106540352242922"
  app_secret: ${WA_APP_SECRET}         # checks X-Hub-Signature-256
  verify_token: ${WA_VERIFY_TOKEN}     # the GET subscription handshake
  access_token: ${WA_ACCESS_TOKEN}     # Graph API bearer token
  api_base_url: https://graph.facebook.com
  api_version: v21.0
  window_template:                     # outside the 24-hour window (else: refused)
    name: reply_waiting                # an approved template
    language: en_US
    text_parameter: true               # the reply's text fills the body's {{1}}
```
"""

from pydantic import AnyHttpUrl, Field, field_validator

from acf.config.secrets import secret_ref
from acf.config.tools import ConfigModel


class WindowTemplateFields(ConfigModel):
    """The approved template sent instead of a reply outside the 24-hour window."""

    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(min_length=2, max_length=16, pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")
    text_parameter: bool = False


class WhatsAppFields(ConfigModel):
    """A WhatsApp Cloud API number (Meta)."""

    agent: str = Field(min_length=1)
    phone_number_id: str = Field(min_length=1, pattern=r"^[0-9]+$")
    app_secret: str
    verify_token: str
    access_token: str
    api_base_url: AnyHttpUrl = AnyHttpUrl("https://graph.facebook.com")
    api_version: str = Field(default="v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    window_template: WindowTemplateFields | None = None

    _secrets = field_validator("app_secret", "verify_token", "access_token")(secret_ref)
