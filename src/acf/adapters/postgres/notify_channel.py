"""One PostgreSQL LISTEN/NOTIFY channel of a process: what the wake-ups
(``adapters.postgres.wakeup``) and the configuration changes
(``adapters.postgres.config_changes``) share.

- ``_notify(payload)`` sends ``pg_notify(channel, payload)`` on one lazily opened autocommit
  connection, behind a lock, within ``notify_timeout_s``. It never raises: a failure is
  logged and the connection dropped (the next call opens a new one). A connection found
  broken is replaced once at once, so a restarted server or a killed backend costs nothing.
- One listener connection (started by ``_ensure_listener`` or ``start``) hands every
  notification's payload to ``_deliver``, one at a time. When it drops it reconnects with
  backoff (what was notified meanwhile is lost: each user says what makes up for it); a
  quiet connection is checked every ``health_check_s``, so a silently dead one is replaced.
"""

import asyncio
import contextlib
from abc import ABC, abstractmethod

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import TupleRow

CONNECT_TIMEOUT_S = 3  # libpq's connect_timeout: whole seconds, at least 2
FIRST_BACKOFF_S = 0.05


def libpq_conninfo(url: str) -> str:
    """A libpq connection string from a DSN or a SQLAlchemy ``postgresql+psycopg://`` URL."""
    for prefix in ("postgresql+psycopg://", "postgres+psycopg://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


class PgNotifyChannel(ABC):
    """A channel's sender and listener; subclasses say what a payload means."""

    event_prefix: str
    """The log events' prefix (``wakeup``: ``wakeup.listener_lost``)."""

    def __init__(
        self,
        conninfo: str,
        *,
        channel: str,
        application_name: str,
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
        self._send_lock = asyncio.Lock()
        self._sender: psycopg.AsyncConnection[TupleRow] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closed = False
        self._log = structlog.get_logger(f"acf.{self.event_prefix}")

    @abstractmethod
    async def _deliver(self, payload: str) -> None:
        """One notification received (the listener waits for it before the next)."""

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

    async def _notify(self, payload: str) -> None:
        if self._closed:
            return
        try:
            async with asyncio.timeout(self._notify_timeout_s), self._send_lock:
                await self._send(payload)
        except Exception as exc:  # best effort: each user says what makes up for a loss
            self._log.warning(
                f"{self.event_prefix}.notify_failed", transport="postgres", error=repr(exc)
            )

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
                self._log.info(
                    f"{self.event_prefix}.listening", transport="postgres", channel=self._channel
                )
                backoff = FIRST_BACKOFF_S
                await self._receive(conn)
            except Exception as exc:  # the listener must outlive any failure
                self._log.warning(
                    f"{self.event_prefix}.listener_lost",
                    transport="postgres",
                    error=repr(exc),
                    retry_s=backoff,
                )
            finally:
                self._listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
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
                    await self._deliver(note.payload)
            async with asyncio.timeout(self._health_check_s):
                await conn.execute("SELECT 1")
