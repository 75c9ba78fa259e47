"""The configuration file's shape: tenants, their agents, pipelines, tools, channel policies
and limits. Validated with pydantic; ``acf.config.load`` turns errors into messages that
name the file, the path of the field and what was expected.

```yaml
version: 1
tenants:
  demo:
    limits: {accepted_messages: 20/second}
    channels:
      web: {mode: adaptive, window_ms: 600, min_window_ms: 250, max_window_ms: 3000}
    tools:
      - {name: lookup_order, builtin: commerce}
      - name: refund
        policy: irreversible
        http:
          method: POST
          url: https://pay.example/refunds
          headers: {Authorization: "Bearer ${PAY_TOKEN}"}
    agents:
      support:
        pipeline: {kind: rules, rules_file: support_rules.yaml}
        tools: [lookup_order, refund]
        settings: {deadline_ms: 30000, fallback_text: "Sorry, a person will follow up."}
```"""

from typing import Annotated, Literal

import limits
from pydantic import AnyHttpUrl, Discriminator, Field, Tag, field_validator, model_validator

from acf.channels.account import ChannelAccount
from acf.channels.email.config import EmailFields
from acf.channels.telegram.config import TelegramFields
from acf.channels.twilio.config import TwilioFields
from acf.channels.whatsapp.config import WhatsAppFields
from acf.config.capabilities import CapabilityFields
from acf.config.pipelines import PipelineFields
from acf.config.tools import ConfigModel, Name, ToolDeclaration
from acf.domain.channels import Channel
from acf.domain.policy import AccumulationMode
from acf.domain.supersede import SupersedeDecision


class ChannelPolicyFields(ConfigModel):
    """Accumulation (DESIGN §5) and fallback (DESIGN §9) on one channel; unset fields,
    ``mode`` included, keep what the layer below says (acf's default, then the tenant's)."""

    mode: AccumulationMode | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        # YAML 1.1 reads a bare `off` as false.
        return "off" if value is False else value

    window_ms: int | None = Field(default=None, ge=0)
    min_window_ms: int | None = Field(default=None, ge=0)
    max_window_ms: int | None = Field(default=None, ge=0)
    typing_grace_ms: int | None = Field(default=None, ge=0)
    segment_pacing_ms: int | None = Field(default=None, ge=0)
    """The pause before each later segment of a reply (typing shown meanwhile)."""
    fallback: list[Channel] | None = None
    """Where a reply refused definitely on this channel goes next, in order, to the
    customer's linked address there (``[]``: nowhere)."""


class SettingsFields(ConfigModel):
    """An agent's runtime settings; unset fields keep acf's default (``AgentSettings``)."""

    supersede: SupersedeDecision | None = None
    restart_bound: int | None = Field(default=None, ge=0)
    max_attempts: int | None = Field(default=None, ge=1)
    retry_backoff_ms: int | None = Field(default=None, ge=0)
    max_retry_backoff_ms: int | None = Field(default=None, ge=0)
    deadline_ms: int | None = Field(default=None, gt=0)
    fallback_text: str | None = Field(default=None, min_length=1)
    history_limit: int | None = Field(default=None, ge=0)


class BuiltinToolFields(ConfigModel):
    """A tool acf ships: ``commerce`` is the demo's in-process commerce backend."""

    name: Name
    builtin: Literal["commerce"]


def _tool_kind(value: object) -> str:
    if isinstance(value, dict):
        return "builtin" if "builtin" in value else "http"
    return "builtin" if isinstance(value, BuiltinToolFields) else "http"


ToolFields = Annotated[
    Annotated[BuiltinToolFields, Tag("builtin")] | Annotated[ToolDeclaration, Tag("http")],
    Discriminator(_tool_kind),
]


class AgentFields(ConfigModel):
    pipeline: PipelineFields
    tools: list[Name] = Field(default_factory=list)
    """The tools this agent may call (its allowlist), by name, from the tenant's tools."""
    settings: SettingsFields = Field(default_factory=SettingsFields)
    channels: dict[Channel, ChannelPolicyFields] = Field(default_factory=dict)
    """Per-channel policies for this agent, over the tenant's."""


class LimitsFields(ConfigModel):
    """Per-tenant limits (DESIGN §15): over them, ingress answers 429 with Retry-After."""

    accepted_messages: str = "20/second"
    """Messages accepted per moving window, in the ``limits`` notation: ``"20/second"``,
    ``"100 per 10 seconds"``, ``"1000/minute"``."""

    @field_validator("accepted_messages")
    @classmethod
    def _parse(cls, value: str) -> str:
        try:
            items = limits.parse_many(value)
        except ValueError:
            items = []
        if len(items) != 1:
            raise ValueError('expected one rate such as "20/second" or "100 per 10 seconds"')
        if items[0].amount < 1:
            raise ValueError("expected at least 1 message per window")
        return value


class TenantFields(ConfigModel):
    display_name: str | None = None
    web_delivery_url: AnyHttpUrl | None = None
    """POST each web-chat reply here as JSON (an integration that forwards replies);
    without it, web replies are read from the event stream."""
    whatsapp: WhatsAppFields | None = None
    """The tenant's WhatsApp Cloud API number (``acf.channels.whatsapp.config``)."""
    twilio: TwilioFields | None = None
    """The tenant's Twilio account: SMS, and WhatsApp through Twilio when ``whatsapp_from``
    is set (``acf.channels.twilio.config``)."""
    telegram: TelegramFields | None = None
    """The tenant's Telegram bot (``acf.channels.telegram.config``)."""
    email: EmailFields | None = None
    """The tenant's support address (``acf.channels.email.config``)."""
    limits: LimitsFields = Field(default_factory=LimitsFields)
    channels: dict[Channel, ChannelPolicyFields] = Field(default_factory=dict)
    capabilities: dict[Channel, CapabilityFields] = Field(default_factory=dict)
    """Overrides of what each channel can show (``acf.config.capabilities``)."""
    tools: list[ToolFields] = Field(default_factory=list)
    agents: dict[Name, AgentFields] = Field(min_length=1)

    def channel_accounts(self) -> dict[str, ChannelAccount]:
        """The provider accounts configured, by their field name."""
        accounts: dict[str, ChannelAccount | None] = {
            "whatsapp": self.whatsapp,
            "twilio": self.twilio,
            "telegram": self.telegram,
            "email": self.email,
        }
        return {name: account for name, account in accounts.items() if account is not None}

    @model_validator(mode="after")
    def _one_whatsapp_sender(self) -> "TenantFields":
        # One WhatsApp number per tenant: replies would not know which provider to take.
        if self.whatsapp is not None and self.twilio is not None and self.twilio.whatsapp_from:
            raise ValueError(
                "whatsapp and twilio.whatsapp_from both configure WhatsApp; keep one of them"
            )
        return self

    @model_validator(mode="after")
    def _tools_known(self) -> "TenantFields":
        names = [t.name for t in self.tools]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ValueError(f"tool {name!r} is declared twice")
            seen.add(name)
        for channel, account in self.channel_accounts().items():
            if account.agent not in self.agents:
                raise ValueError(f"{channel}.agent {account.agent!r} is not one of the agents")
        for agent, fields in self.agents.items():
            unknown = sorted(set(fields.tools) - seen)
            if unknown:
                raise ValueError(
                    f"agent {agent!r} allows tools {unknown} that the tenant does not declare"
                )
        return self


class AcfConfig(ConfigModel):
    version: Literal[1] = 1
    tenants: dict[Name, TenantFields] = Field(min_length=1)
