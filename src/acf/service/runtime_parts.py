"""The runtime's shared parts (``RuntimeParts``), the customer's latest typing signal as the
runtime reads it, and the window rule as the runtime calls it."""

from collections.abc import Callable
from dataclasses import dataclass, field

from acf.domain.accumulation import Typing, WindowDecision, WindowMessage, decide
from acf.domain.events import EventKind
from acf.domain.handoff import PeoplePolicies, default_policies
from acf.domain.ids import SessionId, TenantId
from acf.domain.messages import InboundMessage
from acf.domain.pace import Pace
from acf.domain.policy import AccumulationMode
from acf.domain.session_key import SessionKey
from acf.domain.typing_hold import latest
from acf.ports.agent_binding import AgentBinding
from acf.ports.checkpoints import Checkpoints
from acf.ports.clock import Clock
from acf.ports.drafts import DraftBus
from acf.ports.event_store import EventQuery
from acf.ports.firewall import PolicyBlocks
from acf.ports.store import Store
from acf.service.agents import Agents
from acf.service.lease_keeper import LeaseSettings
from acf.service.tasks import TaskSet
from acf.service.turn_progress_units import Versions
from acf.service.typing_indicator import ShowTyping

TYPING_KINDS = (EventKind.TYPING_STARTED, EventKind.TYPING_STOPPED)
"""The stored typing signals (the events' partial index ``ix_events_typing`` covers them)."""


@dataclass(slots=True)
class RuntimeParts:
    """The runtime's shared parts: the store, the clock, the agents, the task set, the lease
    settings, this holder's id, the in-memory signals (typing, relay pokes) and the drafts'
    bus."""

    store: Store
    clock: Clock
    agents: Agents
    tasks: TaskSet
    checkpoints: Checkpoints
    lease: LeaseSettings
    holder: str
    poke_relay: Callable[[TenantId, SessionId], None]
    typing: dict[SessionKey, Typing] = field(default_factory=dict)
    """The latest typing signal per session key (signals are not stored)."""
    show_typing: ShowTyping | None = None
    """The channels' typing indicator, when the sender has one."""
    rescans: bool = False
    """The runtime scans for unheld work continuously (distributed workers)."""
    drafts: DraftBus | None = None
    """Where running attempts publish their drafts (``ctx.draft``); None: nowhere."""
    people: PeoplePolicies = default_policies
    """Each tenant's handoff and firewall policy (``handoff:``, ``firewall:``)."""
    policy_blocks: PolicyBlocks | None = None
    """The firewall's detector of repeated refusals (None: off)."""

    async def held_elsewhere(self, tenant: TenantId, lease_id: SessionId) -> int | None:
        """What to do about work whose lease another holder has: with continuous
        recovery, nothing (that holder answers its own wake-ups, and the scan finds the
        work once its lease expires); else look again when that lease expires (ms)."""
        if self.rescans:
            return None
        current = await self.store.lease.current(tenant, lease_id)
        if current is None:
            return 1  # released meanwhile
        return max(1, current.expires_at_ms - self.clock.now_ms())

    def versions(self, binding: AgentBinding) -> Versions:
        """The agent version and the label of the configuration version ``binding``
        belongs to (the session's pinned version: ``Agents.pinned``)."""
        return Versions(binding.agent_version, self.agents.label_of(binding))

    async def latest_typing(
        self, key: SessionKey, tenant: TenantId, session_id: SessionId
    ) -> Typing | None:
        """The customer's latest typing signal, in this process or stored, whichever is
        newer. In embedded mode ``typing`` has it (``Runtime.typing`` keeps it while the
        session's driver is active); in distributed mode the signal reached an API process,
        which stored it (``typing.started`` / ``typing.stopped``), and the worker running
        the session has only the store. One read through the events' partial index on
        typing signals (``ix_events_typing``): cheap whether or not the session has any."""
        query = EventQuery(
            session_id=session_id,
            kinds=TYPING_KINDS,
            limit=1,
            in_commit_order=False,  # a lookup: whatever is committed by now
            newest_first=True,
        )
        found = await self.store.events.query(tenant, query)
        stored = (
            Typing(found[0].kind is EventKind.TYPING_STARTED, found[0].at_ms) if found else None
        )
        return latest(self.typing.get(key), stored)

    async def decide_window(
        self,
        binding: AgentBinding,
        key: SessionKey,
        session_id: SessionId,
        messages: list[InboundMessage],
        pending_confirmation: bool = False,
        awaiting_answer: bool = False,
        pace: Pace | None = None,
    ) -> WindowDecision:
        """When the window over ``messages`` (the unseen ones) closes (DESIGN §5).
        ``pace``: the customer's, from the session state's ``meta.pace``. The customer's
        typing is read here (``latest_typing``: memory or the store, as the typing hold
        reads it, so a window behaves the same in both modes) and given to the pure rule;
        not on a channel whose rule ignores typing (FIXED, OFF)."""
        policy = binding.settings.policy_for(key.channel)
        typing = None
        if policy.mode is AccumulationMode.ADAPTIVE:
            typing = await self.latest_typing(key, key.tenant, session_id)
        now = self.clock.now_ms()
        window = [
            WindowMessage(m.received_at_ms, m.text, m.button is not None) for m in messages
        ] or [WindowMessage(now)]
        return decide(policy, window, typing, pending_confirmation, now, awaiting_answer, pace)
