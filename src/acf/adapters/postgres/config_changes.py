"""Config changes across processes over PostgreSQL LISTEN/NOTIFY on ``acf_config``
(DESIGN §17, distributed mode); the ``ConfigChanges`` port.

- ``announce(tenant)`` calls this process's subscribers, then sends
  ``pg_notify('acf_config', tenant)`` (the payload is the tenant, nothing else) on one
  lazily opened autocommit connection, behind a lock, within ``notify_timeout_s``. It never
  raises: a failure is logged and the connection dropped (the next call opens a new one).
  A writer outside acf may send the same NOTIFY.
- ``subscribe(callback)`` registers at once and starts the one listener connection of this
  object; each notification received calls every callback with the tenant, one at a time.
  Its own notifications come back too (callbacks are idempotent re-reads). The listener
  reconnects with backoff, like the wake-ups' (``adapters.postgres.wakeup``); what was
  announced meanwhile is lost, which the periodic re-read of the pointers makes up for.
"""

import asyncio
import contextlib

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import TupleRow

from acf.adapters.postgres.wakeup import CONNECT_TIMEOUT_S, FIRST_BACKOFF_S, libpq_conninfo
from acf.domain.ids import TenantId
from acf.ports.config_changes import ConfigChangeCallback

log = structlog.get_logger("acf.config")

CHANNEL = "acf_config"
APPLICATION_NAME = "acf-config"
MAX_TENANT_BYTES = 200


class PgConfigChanges:
    """Config changes through LISTEN/NOTIFY; see the module docstring."""

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
        self._callbacks: list[ConfigChangeCallback] = []
        self._dispatching = asyncio.Lock()
        self._send_lock = asyncio.Lock()
        self._sender: psycopg.AsyncConnection[TupleRow] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closed = False

    def subscribe(self, callback: ConfigChangeCallback) -> None:
        self._callbacks.append(callback)
        self._ensure_listener()

    async def start(self, wait_s: float = 5.0) -> bool:
        """Start the listener and wait up to ``wait_s`` until it LISTENs."""
        self._ensure_listener()
        try:
            await asyncio.wait_for(self._listening.wait(), wait_s)
        except TimeoutError:
            return False
        return True

    async def announce(self, tenant: TenantId) -> None:
        await self._dispatch(tenant)
        if self._closed:
            return
        try:
            async with asyncio.timeout(self._notify_timeout_s), self._send_lock:
                await self._send(tenant)
        except Exception as exc:  # best effort: the periodic re-read finds the change
            log.warning("config.announce_failed", transport="postgres", error=repr(exc))

    async def _send(self, tenant: TenantId) -> None:
        while True:
            fresh = self._sender is None
            if self._sender is None:
                self._sender = await self._connect("notifier")
            try:
                await self._sender.execute("SELECT pg_notify(%s, %s)", (self._channel, tenant))
                return
            except psycopg.OperationalError:
                await self._drop_sender()
                if fresh:
                    raise
            except BaseException:  # a cancellation mid-query leaves it unusable
                await self._drop_sender()
                raise

    async def _drop_sender(self) -> None:
        conn, self._sender = self._sender, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _dispatch(self, tenant: TenantId) -> None:
        async with self._dispatching:
            for callback in list(self._callbacks):
                try:
                    await callback(tenant)
                except Exception as exc:  # a subscriber's failure is its own
                    log.warning("config.change_callback_failed", tenant=tenant, error=repr(exc))

    async def close(self) -> None:
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
                backoff = FIRST_BACKOFF_S
                await self._receive(conn)
            except Exception as exc:  # the listener must outlive any failure
                log.warning("config.listener_lost", transport="postgres", error=repr(exc))
            finally:
                self._listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _receive(self, conn: psycopg.AsyncConnection[TupleRow]) -> None:
        while True:
            notifies = conn.notifies(timeout=self._health_check_s)
            async with contextlib.aclosing(notifies):
                async for note in notifies:
                    tenant = note.payload
                    if 0 < len(tenant.encode()) <= MAX_TENANT_BYTES:
                        await self._dispatch(tenant)
                    else:
                        log.warning("config.bad_payload", size=len(note.payload))
            async with asyncio.timeout(self._health_check_s):
                await conn.execute("SELECT 1")
