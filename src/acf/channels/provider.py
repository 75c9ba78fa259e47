"""A provider as the composition root sees it: where its account sits in a tenant's
configuration, the channels it sends on, and how its senders are built from the accounts.

A channel more than one provider can send on (WhatsApp: Meta's Cloud API or Twilio) is
routed per tenant; any other channel gets its one provider's sender as it is."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from acf.config.model import TenantFields
from acf.domain.capabilities import ChannelCapabilities
from acf.domain.channels import Channel
from acf.domain.ids import TenantId
from acf.ports.channel_sender import ChannelSender
from acf.ports.email_threads import EmailThreads

Fields = TypeVar("Fields")


@dataclass(frozen=True, slots=True)
class TenantAccount(Generic[Fields]):
    """A tenant's account with a provider: its configuration fields and what each channel
    can show for the tenant (acf's defaults with the tenant's overrides)."""

    fields: Fields
    capabilities: Mapping[Channel, ChannelCapabilities]


@dataclass(frozen=True, slots=True)
class SenderDeps:
    """What senders are built with: the outbound HTTP client, and where email replies find
    what they answer (``None`` where no store is at hand; a provider that needs it then
    refuses to build)."""

    http: httpx.AsyncClient
    email_threads: EmailThreads | None = None


@dataclass(frozen=True, slots=True)
class Reach:
    """A sender and the tenants it reaches on ``channel``."""

    channel: Channel
    sender: ChannelSender
    tenants: frozenset[TenantId]


@dataclass(frozen=True, slots=True)
class ChannelProvider(Generic[Fields]):
    name: str
    """Its field under ``tenants.<name>`` and its segment of ``/v1/channels/``."""
    channels: frozenset[Channel]
    """The channels it can send on."""
    account: Callable[[TenantFields], Fields | None]
    """The tenant's account with it, if any."""
    senders: Callable[[Mapping[TenantId, TenantAccount[Fields]], SenderDeps], Sequence[Reach]]
    """Its senders for the tenants that have an account (called only when one has)."""


AnyProvider = ChannelProvider[Any]
