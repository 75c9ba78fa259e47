"""One Redis pub/sub subscription kept alive: subscribe, hand each message on, and after
any failure (Redis down, the connection cut) close the pubsub, wait (backoff doubling from
50 ms to the caller's ceiling) and subscribe again. Shared by the wake-ups and the drafts."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from redis.asyncio import Redis

from acf.adapters.redis.client import describe

log = structlog.get_logger("acf.redis")

FIRST_BACKOFF_S = 0.05
IDLE_READ_S = 5.0
"""A quiet subscriber wakes up this often."""


async def subscribe_forever(
    client: Redis,
    channel: str,
    subscribed: asyncio.Event,
    on_message: Callable[[Any], Awaitable[None]],
    *,
    what: str,
    max_backoff_s: float,
) -> None:
    """Until cancelled: ``subscribed`` is set while the subscription stands; each message's
    data goes to ``on_message``. Logs ``{what}.redis_down`` once per outage and
    ``{what}.redis_back`` when it ends."""
    backoff = FIRST_BACKOFF_S
    down = False
    while True:
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
            while True:
                message = await pubsub.get_message(timeout=IDLE_READ_S)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    subscribed.set()
                    backoff = FIRST_BACKOFF_S
                    if down:
                        down = False
                        log.info(f"{what}.redis_back", side="subscribe")
                elif message["type"] == "message":
                    await on_message(message["data"])
        except Exception as exc:  # the subscriber must outlive any failure
            if not down:
                down = True
                log.warning(f"{what}.redis_down", side="subscribe", error=describe(exc))
        finally:
            subscribed.clear()
            # Through a typed name: redis-py < 8.2 leaves `aclose` unannotated, 8.2 types it,
            # and a `type: ignore` would be wrong on one of them.
            close: Callable[[], Awaitable[object]] = pubsub.aclose
            await close()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, max_backoff_s)
