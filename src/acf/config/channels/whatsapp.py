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
```
"""

from pydantic import AnyHttpUrl, Field, field_validator

from acf.config.secrets import secret_ref
from acf.config.tools import ConfigModel


class WhatsAppFields(ConfigModel):
    """A WhatsApp Cloud API number (Meta)."""

    agent: str = Field(min_length=1)
    phone_number_id: str = Field(min_length=1, pattern=r"^[0-9]+$")
    app_secret: str
    verify_token: str
    access_token: str
    api_base_url: AnyHttpUrl = AnyHttpUrl("https://graph.facebook.com")
    api_version: str = Field(default="v21.0", pattern=r"^v[0-9]+\.[0-9]+$")

    _secrets = field_validator("app_secret", "verify_token", "access_token")(secret_ref)
