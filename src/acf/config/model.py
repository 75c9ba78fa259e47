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

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

import limits
from pydantic import AnyHttpUrl, Discriminator, Field, Tag, field_validator, model_validator

from acf.channels.account import ChannelAccount
from acf.channels.email.config import EmailFields
from acf.channels.telegram.config import TelegramFields
from acf.channels.twilio.config import TwilioFields
from acf.channels.whatsapp.config import WhatsAppFields
from acf.config.agent_service import AgentServicePipelineFields
from acf.config.capabilities import CapabilityFields
from acf.config.secrets import secret_ref
from acf.config.tools import ConfigModel, ToolDeclaration
from acf.domain.channels import Channel
from acf.domain.policy import AccumulationMode
from acf.domain.supersede import SupersedeDecision

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]


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


class RulesPipelineFields(ConfigModel):
    """The scripted rules pipeline: rules in a file (relative to this one) or inline."""

    kind: Literal["rules"]
    rules_file: str | None = None
    rules: dict[str, object] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "RulesPipelineFields":
        if (self.rules_file is None) == (self.rules is None):
            raise ValueError("expected exactly one of rules_file and rules")
        return self


class PythonPipelineFields(ConfigModel):
    """Your own pipeline: ``factory`` is ``"package.module:callable"``, called with
    ``options`` as keyword arguments, returning a ``Pipeline``."""

    kind: Literal["python"]
    factory: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    options: dict[str, object] = Field(default_factory=dict)


class LlmTimeoutFields(ConfigModel):
    """Limits of one request to the model, in seconds (retries come on top, within the
    turn's deadline)."""

    connect_s: float = Field(default=5.0, gt=0)
    first_token_s: float = Field(default=30.0, gt=0)
    """From the request to the first streamed token."""
    request_s: float = Field(default=120.0, gt=0)
    """From the request to the end of the stream."""


class PriceFields(ConfigModel):
    """What one model costs, per million tokens (any currency; usage reports the sum)."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class EnforcementFields(ConfigModel):
    """Deterministic checks of every reply after generation (``acf.pipelines.llm
    .enforcement``): unset checks do not run."""

    max_chars: int | None = Field(default=None, ge=1)
    banned_phrases: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    """Matched case-insensitively, as words."""
    required_disclosure: str | None = Field(default=None, min_length=1)
    """Appended to the session's first reply (or every reply) that lacks it."""
    disclosure_every_reply: bool = False
    claims: dict[Name, list[Annotated[str, Field(min_length=1)]]] = Field(default_factory=dict)
    """Per tool, regular expressions (case-insensitive) of replies that claim its action;
    such a reply needs a succeeded execution of that tool to go out."""

    @field_validator("claims")
    @classmethod
    def _patterns(cls, claims: dict[str, list[str]]) -> dict[str, list[str]]:
        for tool, patterns in claims.items():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(
                        f"{tool}: invalid regular expression {pattern!r}: {exc}"
                    ) from None
        return claims


UserContextField = Literal["tenant", "customer_id", "channel", "locale"]
USER_CONTEXT: tuple[UserContextField, ...] = ("tenant", "customer_id", "channel", "locale")


class LlmPipelineFields(ConfigModel):
    """The built-in LLM agent: any OpenAI-compatible chat-completions endpoint, its tools
    through acf's gateway (``acf.pipelines.llm``)."""

    kind: Literal["llm"]
    model: str = Field(min_length=1, max_length=256)
    base_url: str = Field(min_length=1, max_length=2048)
    """The endpoint's base URL, ``/v1`` included: ``http://127.0.0.1:11434/v1``."""
    api_key: str | None = None
    """A secret reference, ``${NAME}``, read when the first request is made; none for an
    endpoint without authentication."""
    system_prompt: str | None = Field(default=None, min_length=1)
    """With placeholders ``{tenant_display_name}``, ``{tenant}``, ``{agent}``,
    ``{channel}``, ``{locale}``, ``{customer_id}``."""
    system_prompt_file: str | None = None
    """The prompt in a file, relative to the configuration file."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    history_tokens: int = Field(default=4000, ge=0)
    """The budget of the conversation history the model sees; older turns are summarised."""
    summary_every_turns: int = Field(default=10, ge=1)
    """The rolling summary of older turns is refreshed at most this often."""
    fallback_models: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    """Tried in order when the model fails for good."""
    max_tool_rounds: int = Field(default=6, ge=1, le=50)
    timeouts: LlmTimeoutFields = Field(default_factory=LlmTimeoutFields)
    prices: dict[str, PriceFields] = Field(default_factory=dict)
    """Per model name; usage carries a cost only for models priced here."""
    enforcement: EnforcementFields = Field(default_factory=EnforcementFields)
    user_context: list[UserContextField] = Field(default_factory=lambda: list(USER_CONTEXT))
    """What the system message tells the model about the conversation (never used to
    authorise a tool)."""
    locale: str | None = Field(default=None, min_length=1, max_length=35)

    @field_validator("api_key")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else secret_ref(value)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError("credentials do not belong in the URL: use api_key")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_prompt(self) -> "LlmPipelineFields":
        if self.system_prompt is not None and self.system_prompt_file is not None:
            raise ValueError("expected at most one of system_prompt and system_prompt_file")
        return self

    @property
    def models(self) -> tuple[str, ...]:
        """The model, then the fallback models, without repeats."""
        return tuple(dict.fromkeys([self.model, *self.fallback_models]))


ChildPipelineFields = Annotated[
    RulesPipelineFields | PythonPipelineFields | LlmPipelineFields | AgentServicePipelineFields,
    Field(discriminator="kind"),
]
"""A pipeline a router can pick (any kind but a router)."""


class RouteRuleFields(ConfigModel):
    """When a turn goes to ``route``: its text starts with one of ``commands`` (``/agent``,
    ``@agent``; the command is taken off the text the route sees), holds one of
    ``keywords`` (as words, case-insensitive) or matches ``regex`` (case-insensitive)."""

    route: Name
    commands: list[Annotated[str, Field(min_length=2, pattern=r"^[/@][\w.-]+$")]] = Field(
        default_factory=list
    )
    keywords: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    regex: str | None = Field(default=None, min_length=1)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _some_test(self) -> "RouteRuleFields":
        if not (self.commands or self.keywords or self.regex):
            raise ValueError("expected at least one of commands, keywords and regex")
        return self


class RouterPipelineFields(ConfigModel):
    """Picks one of ``routes`` per turn (``acf.pipelines.routing``): the first matching
    rule, else the route an agent session is still open on (sticky), else ``default``;
    ``fallback`` while the picked route's service is unavailable (circuit open or health
    check failing)."""

    kind: Literal["router"]
    routes: dict[Name, ChildPipelineFields] = Field(min_length=1)
    default: Name
    fallback: Name | None = None
    rules: list[RouteRuleFields] = Field(default_factory=list)
    enabled: bool = True
    """False: every turn goes to ``default`` (delegation switched off for this agent)."""
    sticky_s: float = Field(default=600.0, ge=0)
    """After an agent session's last answer, its route stays picked this long (0: only
    while it runs or waits for the customer)."""
    degraded_notice: str | None = Field(
        default="Advanced features are temporarily unavailable, so I'm answering directly.",
        min_length=1,
    )
    """Put before a fallback route's reply (once per outage and session); None: nothing."""

    @model_validator(mode="after")
    def _routes_known(self) -> "RouterPipelineFields":
        names = set(self.routes)
        named = [("default", self.default)]
        if self.fallback is not None:
            named.append(("fallback", self.fallback))
        named += [(f"rules[{i}].route", r.route) for i, r in enumerate(self.rules)]
        for where, name in named:
            if name not in names:
                raise ValueError(f"{where}: {name!r} is not one of the routes {sorted(names)}")
        return self


PipelineFields = Annotated[
    RulesPipelineFields
    | PythonPipelineFields
    | LlmPipelineFields
    | AgentServicePipelineFields
    | RouterPipelineFields,
    Field(discriminator="kind"),
]


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
