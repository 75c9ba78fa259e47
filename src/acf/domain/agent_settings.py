"""How the runtime treats one agent's turns: supersede default, retries, deadline, fallback."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from acf.domain.capabilities import DEFAULT_CAPABILITIES, ChannelCapabilities
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, ChannelPolicy
from acf.domain.supersede import DEFAULT_RESTART_BOUND, SupersedeDecision

DEFAULT_FALLBACK_TEXT = "Sorry, something went wrong; a person will follow up."


@dataclass(frozen=True, slots=True)
class AgentSettings:
    supersede: SupersedeDecision = SupersedeDecision.SUPERSEDE
    """What a running turn does on new messages, unless the pipeline's hook decides."""
    restart_bound: int = DEFAULT_RESTART_BOUND
    max_attempts: int = 3
    """Pipeline runs per turn (exceptions, deadlines, crashes) before the turn FAILS."""
    retry_backoff_ms: int = 500
    """Pause before the second attempt; doubled for each further one, up to the cap."""
    max_retry_backoff_ms: int = 30_000
    deadline_ms: int = 30_000
    fallback_text: str = DEFAULT_FALLBACK_TEXT
    history_limit: int = 20
    channel_policies: Mapping[Channel, ChannelPolicy] = field(
        default_factory=lambda: dict(DEFAULT_CHANNEL_POLICIES)
    )
    capabilities: Mapping[Channel, ChannelCapabilities] = field(
        default_factory=lambda: dict(DEFAULT_CAPABILITIES)
    )
    """What each channel can show, acf's defaults with the tenant's overrides."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidValue("max_attempts must be at least 1")
        if self.restart_bound < 0 or self.retry_backoff_ms < 0 or self.history_limit < 0:
            raise InvalidValue("restart_bound, retry_backoff_ms and history_limit must be >= 0")
        if self.deadline_ms <= 0:
            raise InvalidValue("deadline_ms must be positive")
        if not self.fallback_text.strip():
            raise InvalidValue("fallback_text must not be empty")

    def policy_for(self, channel: Channel) -> ChannelPolicy:
        return self.channel_policies.get(channel, DEFAULT_CHANNEL_POLICIES[channel])

    def capabilities_for(self, channel: Channel) -> ChannelCapabilities:
        return self.capabilities.get(channel, DEFAULT_CAPABILITIES[channel])

    def backoff_ms(self, failed_attempt: int) -> int:
        """Pause after attempt number ``failed_attempt`` (1-based) failed."""
        pause = self.retry_backoff_ms * 2 ** max(0, failed_attempt - 1)
        return int(min(pause, self.max_retry_backoff_ms))
