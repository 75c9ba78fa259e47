"""What every provider account in the configuration names: the agent that answers on it."""

from typing import Protocol


class ChannelAccount(Protocol):
    """A tenant's account with a provider (``tenants.<name>.<provider>``)."""

    @property
    def agent(self) -> str: ...
