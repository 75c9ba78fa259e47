"""Drafts over Redis pub/sub, with PostgreSQL's bus as the fallback (DESIGN §16).

Redis is the faster path when configured; losing it costs drafts, never correctness (the
stored events are the truth, and drafts are worth nothing late):

- ``publish`` hands the draft to this process's subscribers at once, then queues it
  (bounded, never waits, never raises) for one sender task that publishes batches on
  ``channel`` in a pipeline. When Redis fails, the batch goes through ``fallback``
  (NOTIFY) instead, and Redis is tried again after ``retry_after_s``.
- ``subscribe`` registers at once, on the local bus both share, and starts receiving from
  Redis and from the fallback's listener; a process's own drafts coming back are skipped.
  The payloads are those of NOTIFY (``adapters.postgres.drafts``).

The fallback is the caller's: close it after this object's ``close``.
"""

import asyncio
import itertools
from typing import Any

import structlog

from acf.adapters.memory.drafts import InProcessDraftBus, InProcessDraftSubscription
from acf.adapters.postgres.drafts import QUEUE_BOUND, PgDraftBus, decode, encode
from acf.adapters.redis.client import DEFAULT_TIMEOUT_S, describe, fail_fast_client
from acf.adapters.redis.subscriber import subscribe_forever
from acf.domain.ids import SessionId, TenantId, new_id
from acf.ports.drafts import Draft

log = structlog.get_logger("acf.drafts")

CHANNEL = "acf:drafts"
BATCH = 64


class RedisDraftBus:
    """Drafts through Redis pub/sub, falling back to ``fallback``; see the module."""

    def __init__(
        self,
        url: str,
        fallback: PgDraftBus,
        local: InProcessDraftBus,
        *,
        channel: str = CHANNEL,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry_after_s: float = 1.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        """``local`` must be the one ``fallback`` delivers to."""
        self._client = fail_fast_client(url, timeout_s)
        self._fallback = fallback
        self._local = local
        self._channel = channel
        self._timeout_s = timeout_s
        self._retry_after_s = retry_after_s
        self._max_backoff_s = max_backoff_s
        self.origin = new_id()[:16]
        self._seq = itertools.count()
        self._queue: asyncio.Queue[Draft] = asyncio.Queue(QUEUE_BOUND)
        self._sender: asyncio.Task[None] | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._down = False
        self._retry_at = 0.0
        self._closed = False

    def publish(self, draft: Draft) -> None:
        self._local.publish(draft)
        if self._closed:
            return
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(
                self._send_forever(), name="acf-drafts-redis-sender"
            )
        try:
            self._queue.put_nowait(draft)
        except asyncio.QueueFull:
            log.warning("drafts.dropped", transport="redis", reason="queue full")

    def subscribe(self, tenant: TenantId, session_id: SessionId) -> InProcessDraftSubscription:
        self.listen()
        return self._local.subscribe(tenant, session_id)

    def listen(self) -> None:
        """Start receiving from Redis and from the fallback (idempotent)."""
        self._fallback.listen()
        if self._receiver is None and not self._closed:
            self._receiver = asyncio.get_running_loop().create_task(
                self._receive_forever(), name="acf-drafts-redis-receiver"
            )

    async def start(self, wait_s: float = 5.0) -> bool:
        """Start receiving and wait up to ``wait_s`` until subscribed on Redis and
        listening on the fallback."""
        self.listen()
        try:
            await asyncio.wait_for(self._subscribed.wait(), wait_s)
        except TimeoutError:
            return False
        return await self._fallback.start(wait_s)

    async def close(self) -> None:
        """Stop both tasks and close the Redis connections (not the fallback)."""
        self._closed = True
        tasks = [t for t in (self._sender, self._receiver) if t is not None]
        self._sender = self._receiver = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self._client.aclose()

    async def _send_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if loop.time() >= self._retry_at:
                try:
                    async with asyncio.timeout(self._timeout_s * 4):
                        pipe = self._client.pipeline(transaction=False)
                        for draft in batch:
                            for payload in encode(draft, self.origin, next(self._seq)):
                                pipe.publish(self._channel, payload)
                        await pipe.execute()
                except Exception as exc:  # refused, timed out, anything: fall back
                    self._retry_at = loop.time() + self._retry_after_s
                    if not self._down:
                        self._down = True
                        log.warning("drafts.redis_down", side="publish", error=describe(exc))
                else:
                    if self._down:
                        self._down = False
                        log.info("drafts.redis_back", side="publish")
                    continue
            for draft in batch:
                self._fallback.send(draft)

    async def _receive_forever(self) -> None:
        await subscribe_forever(
            self._client,
            self._channel,
            self._subscribed,
            self._on_message,
            what="drafts",
            max_backoff_s=self._max_backoff_s,
        )

    async def _on_message(self, data: Any) -> None:
        received = decode(data)
        if received is not None and received[0] != self.origin:
            self._local.publish(received[1])
