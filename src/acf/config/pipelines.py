"""The pipeline of an agent, as configured: one fields class per ``pipeline.kind`` (rules,
python, llm; agent_service in ``acf.config.agent_service``; router, whose routes are any of
the others), joined in ``PipelineFields``. ``acf.config.kinds`` maps each kind to the module
that loads and builds it."""

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from acf.config.agent_service import AgentServicePipelineFields
from acf.config.secrets import secret_ref
from acf.config.tools import ConfigModel, Name


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


CLASSIFY_CHARS = 500
"""The longest description a routing rule's ``classify`` may hold."""
NO_ROUTE = "none"
"""The classifier's answer when no classifying rule fits the text."""

ChildPipelineFields = Annotated[
    RulesPipelineFields | PythonPipelineFields | LlmPipelineFields | AgentServicePipelineFields,
    Field(discriminator="kind"),
]
"""A pipeline a router can pick (any kind but a router)."""


class RouteRuleFields(ConfigModel):
    """When a turn goes to ``route``: its text starts with one of ``commands`` (``/agent``,
    ``@agent``; the command is taken off the text the route sees), holds one of
    ``keywords`` (as words, case-insensitive) or matches ``regex`` (case-insensitive); or,
    when nothing else decided the turn, the classifier's model reads the text as fitting
    ``classify``, a description in words ("questions that need a file or data analysed")."""

    route: Name
    commands: list[Annotated[str, Field(min_length=2, pattern=r"^[/@][\w.-]+$")]] = Field(
        default_factory=list
    )
    keywords: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    regex: str | None = Field(default=None, min_length=1)
    classify: str | None = Field(default=None, min_length=1, max_length=CLASSIFY_CHARS)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @field_validator("classify")
    @classmethod
    def _described(cls, value: str | None) -> str | None:
        """One line: the description is a line of the classifier's prompt."""
        if value is None:
            return None
        if not value.strip():
            raise ValueError("expected a description, not blank text")
        return " ".join(value.split())

    @model_validator(mode="after")
    def _some_test(self) -> "RouteRuleFields":
        if not (self.commands or self.keywords or self.regex or self.classify):
            raise ValueError("expected at least one of commands, keywords, regex and classify")
        return self


class RouterPipelineFields(ConfigModel):
    """Picks one of ``routes`` per turn (``acf.pipelines.routing``): a rule's command, else
    the route an agent session is still open on (sticky), else the first rule whose
    keywords or regex match, else the route the classifier picks among the rules that
    ``classify``, else ``default``; ``fallback`` while the picked route's service is
    unavailable (circuit open or health check failing)."""

    kind: Literal["router"]
    routes: dict[Name, ChildPipelineFields] = Field(min_length=1)
    default: Name
    fallback: Name | None = None
    rules: list[RouteRuleFields] = Field(default_factory=list)
    classifier: Name | None = None
    """The ``llm`` route whose model classifies (for the rules with ``classify``); default:
    the first route of kind ``llm``."""
    classifier_timeout_s: float = Field(default=5.0, gt=0, le=60)
    """How long asking the classifier may take, its retries included; past it, the turn
    goes on as if the classifier had picked no route."""
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
        if self.classifier is not None:
            named.append(("classifier", self.classifier))
        named += [(f"rules[{i}].route", r.route) for i, r in enumerate(self.rules)]
        for where, name in named:
            if name not in names:
                raise ValueError(f"{where}: {name!r} is not one of the routes {sorted(names)}")
        return self

    @model_validator(mode="after")
    def _classifier_is_llm(self) -> "RouterPipelineFields":
        llm = [name for name, route in self.routes.items() if route.kind == "llm"]
        if self.classifier is not None and self.classifier not in llm:
            kind = self.routes[self.classifier].kind
            raise ValueError(
                f"classifier: {self.classifier!r} is a route of kind {kind}, expected a route "
                f"of kind llm {llm}"
            )
        classifying = [i for i, r in enumerate(self.rules) if r.classify is not None]
        if classifying and not llm:
            raise ValueError(
                f"classifier: rules[{classifying[0]}].classify needs a route of kind llm to "
                "classify with, and there is none"
            )
        for i in classifying:
            if self.rules[i].route.casefold() == NO_ROUTE:
                raise ValueError(
                    f"rules[{i}].route: a route named {NO_ROUTE!r} cannot be classified to "
                    "(it is the classifier's answer when no route fits)"
                )
        return self

    @property
    def classifier_route(self) -> str | None:
        """The route whose model classifies: ``classifier``, else the first ``llm`` route;
        None when no rule classifies."""
        if all(r.classify is None for r in self.rules):
            return None
        if self.classifier is not None:
            return self.classifier
        return next(name for name, route in self.routes.items() if route.kind == "llm")


PipelineFields = Annotated[
    RulesPipelineFields
    | PythonPipelineFields
    | LlmPipelineFields
    | AgentServicePipelineFields
    | RouterPipelineFields,
    Field(discriminator="kind"),
]
