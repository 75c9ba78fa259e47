"""Config changes within one process (the embedded mode): ``announce`` calls each
subscriber before it returns, so a writer that announced knows this process serves the
change (``ConfigChanges`` port)."""

import asyncio

import structlog

from acf.domain.ids import TenantId
from acf.ports.config_changes import ConfigChangeCallback

log = structlog.get_logger("acf.config")


class InProcessConfigChanges:
    def __init__(self) -> None:
        self._callbacks: list[ConfigChangeCallback] = []
        self._lock = asyncio.Lock()

    def subscribe(self, callback: ConfigChangeCallback) -> None:
        self._callbacks.append(callback)

    async def announce(self, tenant: TenantId) -> None:
        async with self._lock:  # one at a time, in order
            for callback in list(self._callbacks):
                try:
                    await callback(tenant)
                except Exception as exc:  # a subscriber's failure is its own
                    log.warning("config.change_callback_failed", tenant=tenant, error=repr(exc))
