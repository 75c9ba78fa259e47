"""Configuration of the ``agent_service`` pipeline kind (DESIGN §16, seed 004): where the
agent service is, which profile runs, and how long acf waits for it.

```yaml
pipeline:
  kind: agent_service
  base_url: http://127.0.0.1:8700
  profile: support
  api_key: ${AGENT_SERVICE_KEY}
```"""

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from acf.config.secrets import secret_ref
from acf.config.tools import ConfigModel

AgentContextField = Literal["tenant", "customer_id", "channel", "locale", "linked_identities"]
AGENT_CONTEXT: tuple[AgentContextField, ...] = ("tenant", "customer_id", "channel", "locale")
"""The default: ``linked_identities`` (the customer's addresses on other channels) goes to
the service only when an agent lists it."""


class AgentServiceTimeoutFields(ConfigModel):
    """Seconds. Retries come on top, within the turn's deadline."""

    connect_s: float = Field(default=5.0, gt=0)
    first_event_s: float = Field(default=60.0, gt=0)
    """From the request to the stream's first event."""
    stream_s: float = Field(default=300.0, gt=0)
    """From the request to the stream's final event."""


class AgentServiceBreakerFields(ConfigModel):
    """The circuit breaker of the service's base URL (shared by every agent using it)."""

    failures: int = Field(default=5, ge=1)
    window_s: float = Field(default=60.0, gt=0)
    open_s: float = Field(default=30.0, gt=0)


class AgentServiceTexts(ConfigModel):
    """What the customer reads when the service cannot answer (the tenant's wording)."""

    unavailable: str = Field(
        default="Our assistant is unavailable right now. Please try again in a few minutes.",
        min_length=1,
    )
    """The service failed for good (5xx after retries, cut streams, open circuit)."""
    timed_out: str = Field(
        default="That took too long to work out. Could you ask again, perhaps more simply?",
        min_length=1,
    )
    """The service answered 408, or an event took longer than the timeouts allow."""
    not_understood: str = Field(
        default="Sorry, I could not process that request. Could you rephrase it?",
        min_length=1,
    )
    """The service refused the request (400 and other 4xx, a non-retryable ERROR)."""
    ask_expired: str = Field(
        default="My earlier question has expired, so let's start again.", min_length=1
    )
    """Put before the reply to a message that came after a pending question expired."""


class AgentServicePipelineFields(ConfigModel):
    """An external agent service over HTTP + SSE (``acf.pipelines.agent_service``)."""

    kind: Literal["agent_service"]
    base_url: str = Field(min_length=1, max_length=2048)
    """The service's base URL without ``/v1``: ``http://127.0.0.1:8700``."""
    profile: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    """The agent profile the service runs (``/v1/agents/{profile}/execute``)."""
    api_key: str | None = None
    """A secret reference, ``${NAME}``, read when the first request is made (sent as
    ``X-API-Key``)."""
    timeouts: AgentServiceTimeoutFields = Field(default_factory=AgentServiceTimeoutFields)
    retries: int = Field(default=3, ge=0, le=10)
    """Retries after the first request (backoff 1, 2, 4 s...), within the turn's deadline."""
    ask_user_timeout_s: float = Field(default=300.0, gt=0)
    """An ``ASK_USER`` unanswered this long is stale: the agent session is ABANDONED."""
    history_messages: int = Field(default=10, ge=0, le=1000)
    """At most this many earlier messages (customer and agent) in ``chat_history``."""
    history_tokens: int = Field(default=4000, ge=0)
    """And at most this many tokens of them."""
    user_context: list[AgentContextField] = Field(default_factory=lambda: list(AGENT_CONTEXT))
    """What ``user_context`` tells the service about the customer (add
    ``linked_identities`` to send the customer's addresses on other channels)."""
    show_tool_status: bool = True
    """Send a tool's ``status_text`` to the customer on channels that show status text."""
    breaker: AgentServiceBreakerFields = Field(default_factory=AgentServiceBreakerFields)
    texts: AgentServiceTexts = Field(default_factory=AgentServiceTexts)
    locale: Annotated[str, Field(min_length=1, max_length=35)] | None = None

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
        if parts.query or parts.fragment:
            raise ValueError("expected a base URL without query or fragment")
        trimmed = value.rstrip("/")
        if trimmed.endswith("/v1"):
            raise ValueError("expected the base URL without /v1 (acf adds /v1/agents/...)")
        return trimmed
