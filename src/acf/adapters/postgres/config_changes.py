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
  reconnects with backoff (``adapters.postgres.notify_channel``, shared with the wake-ups); what was
  announced meanwhile is lost, which the periodic re-read of the pointers makes up for.
"""

import asyncio

import structlog

from acf.adapters.postgres.notify_channel import PgNotifyChannel
from acf.domain.ids import TenantId
from acf.ports.config_changes import ConfigChangeCallback

log = structlog.get_logger("acf.config")

CHANNEL = "acf_config"
APPLICATION_NAME = "acf-config"
MAX_TENANT_BYTES = 200


class PgConfigChanges(PgNotifyChannel):
    """Config changes through LISTEN/NOTIFY; see the module docstring."""

    event_prefix = "config"

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
        super().__init__(
            conninfo,
            channel=channel,
            application_name=application_name,
            notify_timeout_s=notify_timeout_s,
            health_check_s=health_check_s,
            max_backoff_s=max_backoff_s,
        )
        self._callbacks: list[ConfigChangeCallback] = []
        self._dispatching = asyncio.Lock()

    def subscribe(self, callback: ConfigChangeCallback) -> None:
        self._callbacks.append(callback)
        self._ensure_listener()

    async def announce(self, tenant: TenantId) -> None:
        await self._dispatch(tenant)
        await self._notify(tenant)  # never raises: the periodic re-read finds a lost one

    async def _deliver(self, payload: str) -> None:
        if 0 < len(payload.encode()) <= MAX_TENANT_BYTES:
            await self._dispatch(payload)
        else:
            log.warning("config.bad_payload", size=len(payload))

    async def _dispatch(self, tenant: TenantId) -> None:
        async with self._dispatching:
            for callback in list(self._callbacks):
                try:
                    await callback(tenant)
                except Exception as exc:  # a subscriber's failure is its own
                    log.warning("config.change_callback_failed", tenant=tenant, error=repr(exc))
