"""Provider accounts in the configuration: how a tenant's channels reach their providers,
one module per provider. Credentials are secret references (``${NAME}``), read from the
environment when used; base URLs are per tenant so tests reach local fake providers."""

from typing import Protocol


class ChannelAccount(Protocol):
    """What every provider account names: the agent that answers on it."""

    @property
    def agent(self) -> str: ...
