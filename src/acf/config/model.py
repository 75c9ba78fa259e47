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

from typing import Annotated, Any, Literal

import limits
from pydantic import AnyHttpUrl, Discriminator, Field, Tag, field_validator, model_validator

from acf.channels.account import ChannelAccount
from acf.channels.email.config import EmailFields
from acf.channels.telegram.config import TelegramFields
from acf.channels.twilio.config import TwilioFields
from acf.channels.whatsapp.config import WhatsAppFields
from acf.config.capabilities import CapabilityFields
from acf.config.lifecycle import CanaryFields, StateUpcaster
from acf.config.people import FirewallFields, HandoffFields
from acf.config.pipelines import PipelineFields
from acf.config.tools import ConfigModel, Name, ToolDeclaration
from acf.domain.channels import Channel
from acf.domain.config_versions import ApplyMode
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
    idle_timeout_s: int | None = Field(default=None, ge=60)
    """A session on this channel closes after this long without a message."""
    incomplete_window_ms: int | None = Field(default=None, ge=0)
    """The window after a text that ends unfinished (0: ``window_ms``)."""
    typing_hold_ms: int | None = Field(default=None, ge=0)
    """Hold a ready reply while the customer types, at most this long (0: never)."""
    pace: bool | None = None
    """Let the window follow the customer's own gaps between fragments."""


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


class StepFields(ConfigModel):
    """What a scenario or one of its steps changes of its agent: any of the agent's
    fields, partially (``pipeline: {model: gpt-4o}``); merged over the agent's resolved
    fields and checked as a whole when the configuration loads (``acf.config.resolve``)."""

    pipeline: dict[str, Any] | None = None
    tools: list[Name] | None = None
    """Only narrows the agent's allowlist."""
    settings: SettingsFields | None = None
    channels: dict[Channel, ChannelPolicyFields] | None = None


class ScenarioFields(StepFields):
    """A named flow of an agent: its own changes, then each step's."""

    steps: dict[Name, StepFields] = Field(default_factory=dict)


OVERRIDABLE_ROOTS = ("pipeline", "tools", "settings", "channels")


class AgentFields(ConfigModel):
    pipeline: PipelineFields
    tools: list[Name] = Field(default_factory=list)
    """The tools this agent may call (its allowlist), by name, from the tenant's tools."""
    settings: SettingsFields = Field(default_factory=SettingsFields)
    channels: dict[Channel, ChannelPolicyFields] = Field(default_factory=dict)
    """Per-channel policies for this agent, over the tenant's."""
    base: Name | None = None
    """The base agent (``bases``) this agent's fields are an overlay of."""
    overridable: list[str] = Field(default_factory=list)
    """Dotted keys a session's runtime override may set (``settings.deadline_ms``)."""
    scenarios: dict[Name, ScenarioFields] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _overridable_known(self) -> "AgentFields":
        for key in self.overridable:
            problem = overridable_problem(key, self)
            if problem is not None:
                raise ValueError(f"overridable: {key!r} {problem}")
        return self


def overridable_problem(key: str, agent: AgentFields) -> str | None:
    """Why ``key`` cannot be overridden at runtime on ``agent`` (None: it can)."""
    parts = key.split(".")
    root, rest = parts[0], parts[1:]
    if root not in OVERRIDABLE_ROOTS:
        return f"is not a key a runtime override may set; expected one under {OVERRIDABLE_ROOTS}"
    if root == "tools":
        return None if not rest else "names inside tools, a list: expected tools"
    if root == "settings":
        if len(rest) > 1 or (rest and rest[0] not in SettingsFields.model_fields):
            return f"is not a setting; expected one of {sorted(SettingsFields.model_fields)}"
        return None
    if root == "channels":
        if rest and rest[0] not in {c.value for c in Channel}:
            return f"names no channel; expected one of {sorted(c.value for c in Channel)}"
        if len(rest) > 2 or (len(rest) == 2 and rest[1] not in ChannelPolicyFields.model_fields):
            return f"is not a channel policy field: {sorted(ChannelPolicyFields.model_fields)}"
        return None
    if not rest:
        return "would replace the whole pipeline: name its fields (pipeline.model)"
    if rest[-1] == "kind" or rest[-1].endswith("_file"):
        return "names a pipeline's kind or file, which a runtime override cannot change"
    node: Any = agent.pipeline.model_dump(mode="json")
    for part in rest:
        if not isinstance(node, dict) or part not in node:
            return f"is not a field of this agent's {agent.pipeline.kind} pipeline"
        node = node[part]
    if _unsafe(rest[-1]) or _holds_unsafe(node):
        return (
            "names code, an endpoint or a credential (factory, base_url, url, api_key, "
            "headers), which only the configuration file may set"
        )
    return None


_UNSAFE_KEYS = frozenset({"factory", "base_url", "url", "api_key", "headers"})


def _unsafe(name: str) -> bool:
    return name in _UNSAFE_KEYS or name.endswith("_file")


def _holds_unsafe(node: Any) -> bool:
    """Whether a value a runtime override would replace holds code, an endpoint or a
    credential anywhere inside (a router's routes, a whole sub-mapping)."""
    if isinstance(node, dict):
        return any(_unsafe(str(k)) or _holds_unsafe(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_holds_unsafe(v) for v in node)
    return False


class AgentDefaultsFields(ConfigModel):
    """The tenant's layer under each of its agents (over their base, if any)."""

    settings: SettingsFields = Field(default_factory=SettingsFields)
    channels: dict[Channel, ChannelPolicyFields] = Field(default_factory=dict)


class LimitsFields(ConfigModel):
    """Per-tenant limits (DESIGN §15): over them, the customer API answers 429 with
    Retry-After; signed provider webhooks store, acknowledge and record the message
    (``rate.exceeded``), because some providers never retry a 429."""

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
    handoff: HandoffFields = Field(default_factory=HandoffFields)
    """The human handoff: notices, the fallback rule, the SLA (``acf.config.people``)."""
    firewall: FirewallFields = Field(default_factory=FirewallFields)
    """The abuse firewall: per-customer limits, detectors, cool-down (``acf.config.people``)."""
    channels: dict[Channel, ChannelPolicyFields] = Field(default_factory=dict)
    capabilities: dict[Channel, CapabilityFields] = Field(default_factory=dict)
    """Overrides of what each channel can show (``acf.config.capabilities``)."""
    tools: list[ToolFields] = Field(default_factory=list)
    agent_defaults: AgentDefaultsFields = Field(default_factory=AgentDefaultsFields)
    """Settings and channel policies for all the tenant's agents (the tenant layer)."""
    apply: ApplyMode = ApplyMode.SESSION_CLOSE
    """When a new live version reaches a running session: when it closes, or its next turn."""
    state_upcaster: StateUpcaster | None = None
    """With ``apply: next_turn``: how a moved session's state is migrated."""
    canary: CanaryFields = Field(default_factory=CanaryFields)
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
    def _upcaster_needs_next_turn(self) -> "TenantFields":
        if self.state_upcaster is not None and self.apply is not ApplyMode.NEXT_TURN:
            raise ValueError("state_upcaster: only with apply: next_turn")
        return self

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
    bases: dict[Name, str] = Field(default_factory=dict)
    """Base agents shared across tenants: name -> a file (relative to this one) holding
    one agent's fields; an agent names its base with ``base``."""
    tenants: dict[Name, TenantFields] = Field(min_length=1)
