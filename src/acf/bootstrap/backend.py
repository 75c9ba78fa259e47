"""What the embedded and the distributed backends each bring to the composition root: the
store, the wake-ups, the API keys and their own lifecycle; everything else is wired once,
for both, by ``acf.bootstrap.service.open_service``."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from limits.aio.storage import Storage

from acf.adapters.sqlite.store import SqliteStore
from acf.ports.api_keys import ApiKeys
from acf.ports.wakeup import WakeUps
from acf.service.runtime import RuntimeSettings

if TYPE_CHECKING:  # the embedded mode runs without PostgreSQL's driver
    from acf.adapters.postgres.store import PgStore


@dataclass(slots=True)
class Backend:
    store: "SqliteStore | PgStore"
    """The store; the composition root observes its unit of work."""
    wakeups: WakeUps
    api_keys: ApiKeys
    works: bool = True
    """This process runs turns and deliveries (not an ``api`` process)."""
    runtime: RuntimeSettings | None = None
    """``None``: the runtime's defaults."""
    grace_s: float = 0.0
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Closed after the runtime, before the store (wake-ups, rate-limit storage)."""
    rate_storage: Storage | None = None
