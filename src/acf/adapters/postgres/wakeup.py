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

import json

import structlog

from acf.adapters.memory.wakeup import InProcessSubscription, InProcessWakeUps
from acf.adapters.postgres.notify_channel import (
    CONNECT_TIMEOUT_S,
    FIRST_BACKOFF_S,
    PgNotifyChannel,
    libpq_conninfo,
)
from acf.domain.ids import SessionId, TenantId

log = structlog.get_logger("acf.wakeup")

CHANNEL = "acf_wakeup"
APPLICATION_NAME = "acf-wakeup"


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


class PgWakeUps(PgNotifyChannel):
    """Wake-ups through LISTEN/NOTIFY on ``channel``; see the module docstring."""

    event_prefix = "wakeup"

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
        self._hub = InProcessWakeUps()

    async def notify(self, tenant: TenantId, session_id: SessionId) -> None:
        await self._notify(encode(tenant, session_id))

    def subscribe(self) -> InProcessSubscription:
        """Registered before this returns; starts the listener when it is not running."""
        self._ensure_listener()
        return self._hub.subscribe()

    async def _deliver(self, payload: str) -> None:
        wake = decode(payload)
        if wake is not None:
            await self._hub.notify(*wake)


__all__ = [
    "CONNECT_TIMEOUT_S",
    "FIRST_BACKOFF_S",
    "PgWakeUps",
    "decode",
    "encode",
    "libpq_conninfo",
]
