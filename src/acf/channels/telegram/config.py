"""A tenant's Telegram bot (Bot API), under ``tenants.<name>.telegram``.

```yaml
telegram:
  agent: support                       # the agent that answers this bot
  bot_token: ${TG_BOT_TOKEN}           # from @BotFather; in the URL path of every call
  secret_token: ${TG_SECRET_TOKEN}     # setWebhook(secret_token): checks the webhook header
  api_base_url: https://api.telegram.org
```

The secret token's value (1 to 256 characters of ``A-Z a-z 0-9 _ -``, Telegram's rule for
``setWebhook``) is checked when the webhook uses it: the file holds only the reference.
"""

from pydantic import AnyHttpUrl, Field, field_validator

from acf.config.secrets import secret_ref
from acf.config.tools import ConfigModel


class TelegramFields(ConfigModel):
    """A Telegram bot."""

    agent: str = Field(min_length=1)
    bot_token: str
    secret_token: str
    api_base_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")

    _secrets = field_validator("bot_token", "secret_token")(secret_ref)
