"""Wake-ups over Redis pub/sub, with another WakeUps (PostgreSQL's) as the fallback.

Redis is an optional, faster path (DESIGN §10); losing it costs latency, never correctness:

- ``notify`` publishes on ``channel``. When Redis fails (refused, timed out) it notifies
  through ``fallback`` instead, logs once per outage and tries Redis again after
  ``retry_after_s``. When no Redis subscriber received the message (none subscribed yet,
  or all reconnecting after a Redis restart) it goes through ``fallback`` as well. It never
  raises (as long as ``fallback.notify`` does not) and waits at most about ``timeout_s``
  for Redis.
- ``subscribe()`` registers at once; a subscription receives from BOTH Redis and the
  fallback, coalesced per session, so a wake-up notified during an outage still arrives
  (twice at worst, which costs a look at a session with nothing new).
- One Redis subscriber task per instance, reconnecting with backoff after Redis restarts;
  ``await start()`` waits (bounded) until it is subscribed.

The fallback is the caller's: start and close it around this object's ``start``/``close``.
"""

import asyncio
from typing import Any

import structlog

from acf.adapters.memory.wakeup import InProcessSubscription, InProcessWakeUps
from acf.adapters.postgres.wakeup import decode, encode
from acf.adapters.redis.client import DEFAULT_TIMEOUT_S, describe, fail_fast_client
from acf.adapters.redis.subscriber import subscribe_forever
from acf.domain.ids import SessionId, TenantId
from acf.ports.wakeup import Subscription, WakeUps

log = structlog.get_logger("acf.wakeup")

CHANNEL = "acf:wakeup"


class RedisWakeUps:
    """Wake-ups through Redis pub/sub, falling back to ``fallback``; see the module."""

    def __init__(
        self,
        url: str,
        fallback: WakeUps,
        *,
        channel: str = CHANNEL,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_after_s: float = 1.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._client = fail_fast_client(url, timeout_s)
        self._fallback = fallback
        self._channel = channel
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._max_backoff_s = max_backoff_s
        self._hub = InProcessWakeUps()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._publish_down = False
        self._retry_at = 0.0
        self._closed = False

    async def notify(self, tenant: TenantId, session_id: SessionId) -> None:
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self._retry_at:
            try:
                async with asyncio.timeout(self._timeout_s * 4):
                    receivers = await self._client.publish(
                        self._channel, encode(tenant, session_id)
                    )
            except Exception as exc:  # refused, timed out, or anything else: fall back
                self._retry_at = loop.time() + self._retry_after_s
                if not self._publish_down:
                    self._publish_down = True
                    log.warning("wakeup.redis_down", side="publish", error=describe(exc))
            else:
                if self._publish_down:
                    self._publish_down = False
                    log.info("wakeup.redis_back", side="publish")
                if receivers > 0:
                    return
        await self._fallback.notify(tenant, session_id)

    def subscribe(self) -> InProcessSubscription:
        """Registered before this returns, on Redis and on the fallback."""
        self._ensure_tasks()
        return self._hub.subscribe()

    async def start(self, wait_s: float = 5.0) -> bool:
        """Start receiving (idempotent) and wait up to ``wait_s`` until subscribed on
        Redis. True when it is; False leaves it retrying in the background."""
        self._ensure_tasks()
        try:
            await asyncio.wait_for(self._subscribed.wait(), wait_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop receiving and close the Redis connections (not the fallback)."""
        self._closed = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self._client.aclose()

    def _ensure_tasks(self) -> None:
        if self._tasks or self._closed:
            return
        loop = asyncio.get_running_loop()
        from_fallback = self._fallback.subscribe()  # registered now, like ours
        self._tasks = [
            loop.create_task(self._forward(from_fallback), name="acf-wakeup-fallback"),
            loop.create_task(self._subscribe_forever(), name="acf-wakeup-redis"),
        ]

    async def _forward(self, subscription: Subscription) -> None:
        try:
            async for wake in subscription:
                await self._hub.notify(wake.tenant, wake.session_id)
        finally:
            subscription.close()

    async def _subscribe_forever(self) -> None:
        await subscribe_forever(
            self._client,
            self._channel,
            self._subscribed,
            self._on_message,
            what="wakeup",
            max_backoff_s=self._max_backoff_s,
        )

    async def _on_message(self, data: Any) -> None:
        if wake := decode(data):
            await self._hub.notify(*wake)
