"""Every storage port over one ``Database``: what a store of either dialect is made of."""

from acf.adapters.sql.agent_sessions import SqlAgentSessions
from acf.adapters.sql.blocks import SqlBlocks
from acf.adapters.sql.claims import SqlClaims
from acf.adapters.sql.customer_rates import SqlCustomerRates
from acf.adapters.sql.database import Database
from acf.adapters.sql.dead_letters import SqlDeadLetters
from acf.adapters.sql.email_threads import SqlEmailThreads
from acf.adapters.sql.events import SqlEventStore
from acf.adapters.sql.handoffs import SqlHandoffs
from acf.adapters.sql.identities import SqlIdentities
from acf.adapters.sql.lease import SqlSessionLease
from acf.adapters.sql.ledger import SqlLedger
from acf.adapters.sql.messages import SqlMessageLog
from acf.adapters.sql.outbox import SqlOutbox
from acf.adapters.sql.recovery import SqlRecoveryScanner
from acf.adapters.sql.request_log import SqlRequestLog
from acf.adapters.sql.sessions import SqlSessionStore
from acf.adapters.sql.step_memo import SqlStepMemo
from acf.adapters.sql.timers import SqlTimers
from acf.adapters.sql.turns import SqlTurnStore
from acf.adapters.sql.unit_of_work import SqlUnitOfWork
from acf.ports.clock import Clock
from acf.ports.firewall import CustomerRates
from acf.ports.unit_of_work import UnitOfWork


class SqlPorts:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.messages = SqlMessageLog(db)
        self.sessions = SqlSessionStore(db)
        self.turns = SqlTurnStore(db)
        self.events = SqlEventStore(db)
        self.outbox = SqlOutbox(db)
        self.memo = SqlStepMemo(db)
        self.lease = SqlSessionLease(db, clock)
        self.claims = SqlClaims(db, clock)
        self.ledger = SqlLedger(db)
        self.timers = SqlTimers(db)
        self.uow: UnitOfWork = SqlUnitOfWork(db)
        self.recovery = SqlRecoveryScanner(db)
        self.requests = SqlRequestLog(db)
        self.identities = SqlIdentities(db)
        self.email_threads = SqlEmailThreads(db)
        self.agent_sessions = SqlAgentSessions(db)
        self.dead_letters = SqlDeadLetters(db)
        self.handoffs = SqlHandoffs(db)
        self.blocks = SqlBlocks(db)
        self.customer_rates: CustomerRates = SqlCustomerRates(db)
        """Replaced by Redis counters in the distributed mode when Redis is configured."""
