"""Store: every storage port of one backend, opened and closed together."""

from typing import Protocol

from acf.ports.agent_sessions import AgentSessions
from acf.ports.claims import Claims
from acf.ports.config_versions import ConfigVersions
from acf.ports.dead_letters import DeadLetters
from acf.ports.email_threads import EmailThreads
from acf.ports.event_store import EventStore
from acf.ports.firewall import Blocks, CustomerRates
from acf.ports.handoffs import Handoffs
from acf.ports.identities import Identities
from acf.ports.lease import SessionLease
from acf.ports.ledger import Ledger
from acf.ports.message_log import MessageLog
from acf.ports.outbox import Outbox
from acf.ports.recovery import RecoveryScanner
from acf.ports.request_log import RequestLog
from acf.ports.session_store import SessionStore
from acf.ports.step_memo import StepMemo
from acf.ports.timers import Timers
from acf.ports.turn_store import TurnStore
from acf.ports.unit_of_work import UnitOfWork


class Store(Protocol):
    """One backend's ports; writes to any of them go through ``uow``."""

    @property
    def messages(self) -> MessageLog: ...
    @property
    def sessions(self) -> SessionStore: ...
    @property
    def turns(self) -> TurnStore: ...
    @property
    def events(self) -> EventStore: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def memo(self) -> StepMemo: ...
    @property
    def lease(self) -> SessionLease: ...
    @property
    def claims(self) -> Claims:
        """A lease taken and what it guards read, in one transaction."""
        ...

    @property
    def timers(self) -> Timers: ...
    @property
    def ledger(self) -> Ledger: ...
    @property
    def requests(self) -> RequestLog: ...
    @property
    def identities(self) -> Identities: ...
    @property
    def email_threads(self) -> EmailThreads: ...
    @property
    def agent_sessions(self) -> AgentSessions: ...
    @property
    def dead_letters(self) -> DeadLetters: ...
    @property
    def config_versions(self) -> ConfigVersions: ...
    @property
    def handoffs(self) -> Handoffs: ...
    @property
    def blocks(self) -> Blocks: ...
    @property
    def customer_rates(self) -> CustomerRates:
        """Per-customer counters of the abuse firewall (the store's, or Redis's)."""
        ...

    @property
    def uow(self) -> UnitOfWork: ...
    @property
    def recovery(self) -> RecoveryScanner:
        """The only cross-tenant read: where work was left (ids only)."""
        ...

    async def ping(self) -> None:
        """Raise if the backend cannot answer a query now (readiness)."""
        ...

    async def close(self) -> None: ...
