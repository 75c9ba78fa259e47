"""The typing indicator while a turn's pipeline runs (DESIGN §9, channel capabilities).

On a channel that can show one, the customer sees that an answer is being written from
the moment the pipeline starts until it ends: the indicator is shown at once and again
before it expires (``typing_lasts_ms``), and stopped with the attempt. It is best effort:
a provider that refuses it costs one log line, never the turn.
"""

from collections.abc import Awaitable, Callable

import structlog

from acf.domain.capabilities import ChannelCapabilities
from acf.domain.session_key import SessionKey
from acf.ports.clock import Clock

log = structlog.get_logger("acf.typing")

ShowTyping = Callable[[SessionKey, str], Awaitable[None]]
"""A channel's ``show_typing(key, last_inbound_id)``."""

MIN_REFRESH_MS = 1_000


def refresh_ms(capabilities: ChannelCapabilities) -> int:
    """Shown again at 80 % of its life, so it never blinks out while the turn runs."""
    return max(MIN_REFRESH_MS, capabilities.typing_lasts_ms * 4 // 5)


async def keep_typing(
    show: ShowTyping,
    key: SessionKey,
    last_inbound_id: str,
    capabilities: ChannelCapabilities,
    clock: Clock,
) -> None:
    """Show typing until cancelled; the first failure ends it (logged)."""
    every_s = refresh_ms(capabilities) / 1000
    while True:
        try:
            await show(key, last_inbound_id)
        except Exception as exc:  # best effort: the provider's refusal ends the indicator
            log.info("typing.not_shown", tenant=key.tenant, channel=key.channel, error=repr(exc))
            return
        await clock.sleep(every_s)
