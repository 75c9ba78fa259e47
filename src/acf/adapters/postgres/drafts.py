"""Drafts across processes over PostgreSQL LISTEN/NOTIFY (DESIGN §16, distributed mode).

The ``DraftBus`` port's guarantees, across processes sharing one database:

- ``publish`` hands the draft to this process's subscribers at once, then puts it on a
  bounded queue (never waits, never raises; when the queue is full the draft is dropped).
  One sender task sends what is queued, a batch per round trip (``pg_notify`` over an
  array), on one lazily opened autocommit connection; a failure drops the batch and the
  connection (the next batch opens a new one). Drafts are worth nothing late.
- A NOTIFY payload must stay under 8000 bytes: a long draft is split into consecutive
  drafts (each with its own offset), each payload under ``MAX_PAYLOAD_BYTES``.
- ``subscribe`` registers at once and starts this process's listener (one connection),
  which hands other processes' drafts to the local subscribers (its own come back too and
  are skipped: they were delivered locally). It reconnects with backoff; what was
  notified meanwhile is lost (watchers catch up on the next whole draft, within a second).
"""

import asyncio
import contextlib
import itertools
import json
from collections.abc import Sequence

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import TupleRow

from acf.adapters.memory.drafts import InProcessDraftBus, InProcessDraftSubscription
from acf.adapters.postgres.notify_channel import (
    CONNECT_TIMEOUT_S,
    FIRST_BACKOFF_S,
    libpq_conninfo,
)
from acf.domain.ids import SessionId, TenantId, new_id
from acf.ports.drafts import Draft

log = structlog.get_logger("acf.drafts")

CHANNEL = "acf_drafts"
APPLICATION_NAME = "acf-drafts"
MAX_PAYLOAD_BYTES = 7800
"""Below PostgreSQL's 8000-byte limit on a NOTIFY payload, with room to spare."""
QUEUE_BOUND = 1024
BATCH = 64


def encode(draft: Draft, origin: str, seq: int) -> list[str]:
    """The payloads carrying ``draft``: one, or several consecutive parts when its text
    does not fit (each a draft of its own: the text from its offset)."""
    body = {
        "o": origin,
        "n": seq,
        "t": draft.tenant,
        "s": draft.session_id,
        "u": draft.turn_id,
        "a": draft.attempt,
        "f": draft.fence,
        "x": draft.offset,
        "m": draft.at_ms,
        "d": draft.text,
    }
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if len(payload.encode()) <= MAX_PAYLOAD_BYTES or len(draft.text) <= 1:
        return [payload]
    half = len(draft.text) // 2
    first = Draft(
        draft.tenant,
        draft.session_id,
        draft.turn_id,
        draft.attempt,
        draft.fence,
        draft.offset,
        draft.text[:half],
        draft.at_ms,
    )
    rest = Draft(
        draft.tenant,
        draft.session_id,
        draft.turn_id,
        draft.attempt,
        draft.fence,
        draft.offset + half,
        draft.text[half:],
        draft.at_ms,
    )
    return encode(first, origin, seq) + encode(rest, origin, seq)


def decode(payload: str) -> tuple[str, Draft] | None:
    """The origin and the draft of a payload; None (logged) when malformed."""
    try:
        d = json.loads(payload)
        draft = Draft(d["t"], d["s"], d["u"], d["a"], d["f"], d["x"], d["d"], d["m"])
        origin = d["o"]
        ints = (draft.attempt, draft.fence, draft.offset, draft.at_ms)
        strs = (origin, draft.tenant, draft.session_id, draft.turn_id, draft.text)
        if all(type(i) is int for i in ints) and all(isinstance(s, str) for s in strs):
            return origin, draft
    except (ValueError, KeyError, TypeError):
        pass
    log.warning("drafts.bad_payload", size=len(payload))
    return None


class PgDraftBus:
    """Drafts through LISTEN/NOTIFY on ``channel``; see the module docstring. ``local``: the
    in-process bus it delivers to (shared with a Redis bus using this one as fallback)."""

    def __init__(
        self,
        conninfo: str,
        *,
        local: InProcessDraftBus | None = None,
        channel: str = CHANNEL,
        application_name: str = APPLICATION_NAME,
        send_timeout_s: float = 2.0,
        health_check_s: float = 15.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._conninfo = libpq_conninfo(conninfo)
        self._local = local or InProcessDraftBus()
        self._channel = channel
        self._app = application_name
        self._send_timeout_s = send_timeout_s
        self._health_check_s = health_check_s
        self._max_backoff_s = max_backoff_s
        self.origin = new_id()[:16]
        self._seq = itertools.count()
        self._queue: asyncio.Queue[Draft] = asyncio.Queue(QUEUE_BOUND)
        self._sender: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._full_logged = False
        self._closed = False

    def publish(self, draft: Draft) -> None:
        self._local.publish(draft)
        self.send(draft)

    def send(self, draft: Draft) -> None:
        """To the other processes only (never waits, never raises)."""
        if self._closed:
            return
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(
                self._send_forever(), name=f"{self._app}-sender"
            )
        try:
            self._queue.put_nowait(draft)
            self._full_logged = False
        except asyncio.QueueFull:
            if not self._full_logged:
                self._full_logged = True
                log.warning("drafts.dropped", transport="postgres", reason="queue full")

    def subscribe(self, tenant: TenantId, session_id: SessionId) -> InProcessDraftSubscription:
        self.listen()
        return self._local.subscribe(tenant, session_id)

    def listen(self) -> None:
        """Start the listener (idempotent)."""
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(
                self._listen_forever(), name=f"{self._app}-listener"
            )

    async def start(self, wait_s: float = 5.0) -> bool:
        """Start the listener and wait up to ``wait_s`` until it LISTENs."""
        self.listen()
        try:
            await asyncio.wait_for(self._listening.wait(), wait_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self._closed = True
        tasks = [t for t in (self._sender, self._listener) if t is not None]
        self._sender = self._listener = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _connect(self, role: str) -> psycopg.AsyncConnection[TupleRow]:
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            application_name=f"{self._app}-{role}",
            connect_timeout=CONNECT_TIMEOUT_S,
        )

    async def _send_forever(self) -> None:
        conn: psycopg.AsyncConnection[TupleRow] | None = None
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < BATCH and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                payloads = [p for d in batch for p in encode(d, self.origin, next(self._seq))]
                try:
                    async with asyncio.timeout(self._send_timeout_s):
                        if conn is None:
                            conn = await self._connect("sender")
                        await self._notify(conn, payloads)
                except Exception as exc:  # best effort: drafts are worth nothing late
                    log.warning("drafts.send_failed", transport="postgres", error=repr(exc))
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.close()
                    conn = None
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _notify(
        self, conn: psycopg.AsyncConnection[TupleRow], payloads: Sequence[str]
    ) -> None:
        await conn.execute(
            "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p", (self._channel, payloads)
        )

    async def _listen_forever(self) -> None:
        backoff = FIRST_BACKOFF_S
        while True:
            conn: psycopg.AsyncConnection[TupleRow] | None = None
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S + 1):
                    conn = await self._connect("listener")
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                self._listening.set()
                backoff = FIRST_BACKOFF_S
                await self._receive(conn)
            except Exception as exc:  # the listener must outlive any failure
                log.warning("drafts.listener_lost", transport="postgres", error=repr(exc))
            finally:
                self._listening.clear()
                if conn is not None:
                    try:
                        await conn.close()
                    except Exception as exc:  # a broken connection must not end the listener
                        log.warning("drafts.close_failed", transport="postgres", error=repr(exc))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _receive(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        while True:
            notifies = conn.notifies(timeout=self._health_check_s)
            async with contextlib.aclosing(notifies):
                async for note in notifies:
                    received = decode(note.payload)
                    if received is not None and received[0] != self.origin:
                        self._local.publish(received[1])
            async with asyncio.timeout(self._health_check_s):
                await conn.execute("SELECT 1")
