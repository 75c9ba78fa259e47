"""Wake-ups across processes over PostgreSQL LISTEN/NOTIFY (DESIGN §10, distributed mode).

The WakeUps port's guarantees, across processes sharing one database:

- ``notify`` sends ``pg_notify(channel, {"t": tenant, "s": session_id})`` on one lazily
  opened autocommit connection (one notification at a time, behind a lock). It never raises
  and never waits longer than ``notify_timeout_s``: on a failure it logs, drops the
  connection (the next call opens a new one) and the wake-up is lost. A connection found
  broken is replaced once at once, so a restarted server or a killed backend costs nothing.
- ``subscribe()`` registers at once; each subscription sees every notification the
  listener receives from then on, coalesced per session like the in-process wake-ups. The
  listener may still be connecting: ``await start()`` waits (bounded) until it LISTENs.
- One listener connection per ``PgWakeUps`` feeds every local subscription. When it drops
  it reconnects with backoff; what was notified meanwhile is lost, which costs latency
  only: the worker's continuous recovery finds sessions with unconsumed messages. A quiet
  connection is checked every ``health_check_s``, so a silently dead one is replaced too.
"""

import asyncio
import contextlib
import json

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import TupleRow

from acf.adapters.memory.wakeup import InProcessSubscription, InProcessWakeUps
from acf.domain.ids import SessionId, TenantId

log = structlog.get_logger("acf.wakeup")

CHANNEL = "acf_wakeup"
APPLICATION_NAME = "acf-wakeup"
CONNECT_TIMEOUT_S = 3  # libpq's connect_timeout: whole seconds, at least 2
FIRST_BACKOFF_S = 0.05


def libpq_conninfo(url: str) -> str:
    """A libpq connection string from a DSN or a SQLAlchemy ``postgresql+psycopg://`` URL."""
    for prefix in ("postgresql+psycopg://", "postgres+psycopg://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


def encode(tenant: TenantId, session_id: SessionId) -> str:
    return json.dumps({"t": tenant, "s": session_id}, separators=(",", ":"))


def decode(payload: str) -> tuple[TenantId, SessionId] | None:
    """The (tenant, session) of a wake-up payload; None (logged) when malformed."""
    try:
        data = json.loads(payload)
        tenant, session_id = data["t"], data["s"]
    except (ValueError, KeyError, TypeError):
        tenant = session_id = None
    if isinstance(tenant, str) and isinstance(session_id, str):
        return tenant, session_id
    log.warning("wakeup.bad_payload", payload=payload[:200])
    return None


class PgWakeUps:
    """Wake-ups through LISTEN/NOTIFY on ``channel``; see the module docstring."""

    def __init__(
        self,
        conninfo: str,
        *,
        channel: str = CHANNEL,
        application_name: str = APPLICATION_NAME,
        notify_timeout_s: float = 2.0,
        health_check_s: float = 15.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._conninfo = libpq_conninfo(conninfo)
        self._channel = channel
        self._app = application_name
        self._notify_timeout_s = notify_timeout_s
        self._health_check_s = health_check_s
        self._max_backoff_s = max_backoff_s
        self._hub = InProcessWakeUps()
        self._send_lock = asyncio.Lock()
        self._sender: psycopg.AsyncConnection[TupleRow] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closed = False

    async def notify(self, tenant: TenantId, session_id: SessionId) -> None:
        if self._closed:
            return
        payload = encode(tenant, session_id)
        try:
            async with asyncio.timeout(self._notify_timeout_s), self._send_lock:
                await self._send(payload)
        except Exception as exc:  # best effort: the store stays the truth
            log.warning("wakeup.notify_failed", transport="postgres", error=repr(exc))

    async def _send(self, payload: str) -> None:
        """Under the lock: send on the open connection, or on a new one when it is broken."""
        while True:
            fresh = self._sender is None
            if self._sender is None:
                self._sender = await self._connect("notifier")
            try:
                await self._sender.execute("SELECT pg_notify(%s, %s)", (self._channel, payload))
                return
            except psycopg.OperationalError:
                await self._drop_sender()
                if fresh:
                    raise
            except BaseException:  # the timeout's cancellation mid-query leaves it unusable
                await self._drop_sender()
                raise

    async def _drop_sender(self) -> None:
        conn, self._sender = self._sender, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    def subscribe(self) -> InProcessSubscription:
        """Registered before this returns; starts the listener when it is not running."""
        self._ensure_listener()
        return self._hub.subscribe()

    async def start(self, wait_s: float = 5.0) -> bool:
        """Start the listener (idempotent) and wait up to ``wait_s`` until it LISTENs.
        True when it does; False leaves it retrying in the background."""
        self._ensure_listener()
        try:
            await asyncio.wait_for(self._listening.wait(), wait_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop the listener and close both connections; later notifies are dropped."""
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            await asyncio.wait([listener])
        async with self._send_lock:
            await self._drop_sender()

    def _ensure_listener(self) -> None:
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(
                self._listen_forever(), name=f"{self._app}-listener"
            )

    async def _connect(self, role: str) -> psycopg.AsyncConnection[TupleRow]:
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            application_name=f"{self._app}-{role}",
            connect_timeout=CONNECT_TIMEOUT_S,
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
                log.info("wakeup.listening", transport="postgres", channel=self._channel)
                backoff = FIRST_BACKOFF_S
                await self._receive(conn)
            except Exception as exc:  # the listener must outlive any failure
                log.warning(
                    "wakeup.listener_lost", transport="postgres", error=repr(exc), retry_s=backoff
                )
            finally:
                self._listening.clear()
                if conn is not None:
                    await conn.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _receive(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        """Deliver notifications until the connection fails. Those arriving during the
        health check are kept by psycopg and yielded by the next ``notifies()``."""
        while True:
            notifies = conn.notifies(timeout=self._health_check_s)
            async with contextlib.aclosing(notifies):
                async for note in notifies:
                    wake = decode(note.payload)
                    if wake is not None:
                        await self._hub.notify(*wake)
            async with asyncio.timeout(self._health_check_s):
                await conn.execute("SELECT 1")
