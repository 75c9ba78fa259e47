"""A tenant's overrides of channel capabilities (``tenants.<name>.capabilities``).

```yaml
capabilities:
  whatsapp:
    max_buttons: 0          # this number's replies stay plain text: numbered options
  sms:
    max_text_length: 480    # a carrier route that concatenates only 3 segments
```

Fields left out keep acf's defaults (``acf.domain.capabilities``).
"""

from pydantic import Field

from acf.config.tools import ConfigModel


class CapabilityFields(ConfigModel):
    max_text_length: int | None = Field(default=None, ge=1)
    max_buttons: int | None = Field(default=None, ge=0)
    max_button_title_length: int | None = Field(default=None, ge=0)
    media: bool | None = None
    typing_indicator: bool | None = None
    typing_lasts_ms: int | None = Field(default=None, ge=0)
    read_receipts: bool | None = None
    markdown: bool | None = None
    streams_drafts: bool | None = None
