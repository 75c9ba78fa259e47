"""DESIGN §3 invariant 8 at the port level: with tenant A, no port method reaches B's rows.

Both tenants get identical-looking data (same customers, provider ids, group ids, keys);
every read is called as tenant A with B's identifiers and must find nothing, and every
write staged as tenant A against B's identifiers must fail or change nothing of B's.
A meta-test keeps this file honest: a port method or write op without a case fails it.
"""

import contextlib
import inspect
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest

import acf.ports.agent_sessions
import acf.ports.config_versions
import acf.ports.dead_letters
import acf.ports.email_threads
import acf.ports.event_store
import acf.ports.identities
import acf.ports.lease
import acf.ports.ledger
import acf.ports.message_log
import acf.ports.outbox
import acf.ports.request_log
import acf.ports.session_store
import acf.ports.step_memo
import acf.ports.timers
import acf.ports.turn_store
from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.channels import Channel
from acf.domain.config_versions import ApplyMode
from acf.domain.errors import Conflict, InvalidValue
from acf.domain.events import Correlation, EventKind, FabricEvent
from acf.domain.fallback import Route
from acf.domain.records import TurnRecord
from acf.domain.signals import DeliveryStatus
from acf.domain.tools import LedgerStatus, SideEffectPolicy
from acf.domain.turns import GroupStatus, TurnGroup, TurnPhase
from acf.ports.agent_sessions import SaveAgentSession
from acf.ports.config_versions import (
    PromoteVersion,
    PushVersion,
    RecordGate,
    RollbackCanary,
    RollbackLive,
    SetCanaryShare,
    StartCanary,
)
from acf.ports.dead_letters import DeadLetter, FinishReplay, RecordDeadLetter, RequestReplay
from acf.ports.event_store import AppendEvent, EventQuery
from acf.ports.identities import LinkIdentities, RouteToSession, UnlinkIdentity
from acf.ports.lease import CheckFence
from acf.ports.ledger import BeginExecution, FinishExecution, LedgerEntry, LedgerQuery
from acf.ports.message_log import AppendMessage
from acf.ports.outbox import (
    ApplyDeliveryStatus,
    CutUnsentPart,
    EnqueueFallback,
    EnqueueReply,
    RecordAttempt,
    RecordPartsSent,
)
from acf.ports.request_log import ReserveRequest, SaveResponse
from acf.ports.session_store import (
    CloseSession,
    ConsumeRange,
    FlagSession,
    PatchState,
    RepinSession,
    SessionFilter,
)
from acf.ports.step_memo import MemoKey, RememberStep
from acf.ports.store import Store
from acf.ports.timers import CancelTimer, SetTimer, Timer
from acf.ports.turn_store import (
    CreateTurn,
    MarkIrreversibleStarted,
    MoveTurn,
    OpenGroup,
    SaveTurnRecord,
    UpdateGroup,
)
from acf.ports.unit_of_work import WriteOp
from acf.testing import VirtualClock
from tests.contract.event_horizon import readable
from tests.contract.helpers import append, key, message, turn
from tests.contract.test_tenant_isolation_people import PORTS as PEOPLE_PORTS
from tests.contract.test_tenant_isolation_people import READS as PEOPLE_READS
from tests.contract.test_tenant_isolation_people import writes as people_writes

A, B = "tenant-a", "tenant-b"
PORTS = {
    "messages": acf.ports.message_log.MessageLog,
    "sessions": acf.ports.session_store.SessionStore,
    "turns": acf.ports.turn_store.TurnStore,
    "events": acf.ports.event_store.EventStore,
    "outbox": acf.ports.outbox.Outbox,
    "memo": acf.ports.step_memo.StepMemo,
    "lease": acf.ports.lease.SessionLease,
    "timers": acf.ports.timers.Timers,
    "ledger": acf.ports.ledger.Ledger,
    "requests": acf.ports.request_log.RequestLog,
    "identities": acf.ports.identities.Identities,
    "email_threads": acf.ports.email_threads.EmailThreads,
    "agent_sessions": acf.ports.agent_sessions.AgentSessions,
    "dead_letters": acf.ports.dead_letters.DeadLetters,
    "config_versions": acf.ports.config_versions.ConfigVersions,
}
SHARED_WA = Route(Channel.WHATSAPP, "shared-customer")
SHARED_SMS = Route(Channel.SMS, "+15550000")


@dataclass
class World:
    """Tenant B's identifiers, as an attacker in tenant A would guess them."""

    session_id: str
    message_id: str
    turn_id: str
    group_id: str
    outbox_id: int
    event_count: int


async def _seed(store: Store, tenant: str, clock: VirtualClock) -> World:
    k = key(tenant=tenant, customer="shared-customer")
    # Configuration versions first, so the session opened below is pinned to one.
    await store.uow.commit(
        tenant,
        [
            _push(tenant, "sha256:shared-1"),
            _push(tenant, "sha256:shared-2"),
            PromoteVersion(tenant, 1, 500, "seed"),
            StartCanary(tenant, 2, 50, 500, "seed"),
            RecordGate(tenant, 2, "scenarios", True, {"secret": tenant}, 500),
        ],
    )
    r = await append(store, k, "wamid.shared")
    t = turn(tenant, r.session_id, group_id="shared-group")
    enqueue = EnqueueReply(r.session_id, t.turn_id, 0, {"text": "secret"}, 1_000)
    record = TurnRecord(
        Correlation(tenant, "tr", r.session_id, t.turn_id, "shared-group", config_version="v1"),
        TurnPhase.COMMITTED,
        0,
        1,
        1,
        1_000,
        1_100,
    )
    results = await store.uow.commit(
        tenant,
        [
            OpenGroup(TurnGroup(tenant, "shared-group", r.session_id, GroupStatus.OPEN, 0, 1, 1)),
            CreateTurn(t),
            enqueue,
            SaveTurnRecord(record),
            RememberStep(MemoKey("shared-group", "step", "fp"), {"secret": tenant}, 1_000),
            SetTimer(Timer(tenant, r.session_id, "window", 1_000)),
            AppendEvent(
                FabricEvent(EventKind.TURN_STARTED, 1_000, Correlation(tenant, "tr", r.session_id))
            ),
            BeginExecution(_ledger_entry(tenant, r.session_id)),
            ReserveRequest("shared-idem", "h", 1_000),
            SaveResponse("shared-idem", 202, {"secret": tenant}),
            LinkIdentities("shared-cust", (SHARED_WA, SHARED_SMS), 1_000),
            RouteToSession("support", SHARED_SMS, r.session_id, 1_000),
            SaveAgentSession(_agent_session(tenant, r.session_id)),
            RecordDeadLetter(_dead_letter(tenant, "shared-dl", r.session_id)),
            RecordDeadLetter(_dead_letter(tenant, "shared-dl-2", r.session_id)),
            RequestReplay("shared-dl", 1_000),
        ],
    )
    outbox_id = results.get(enqueue)
    await store.uow.commit(
        tenant,
        [
            ApplyDeliveryStatus(
                outbox_id, DeliveryStatus.SENT, 1_000, provider_message_id="wamid.out"
            )
        ],
    )
    await store.lease.acquire(tenant, r.session_id, "holder", 60_000)
    threads = store.email_threads
    await threads.record_inbound(tenant, "ann@shared.example", "<in@shared>", [], "Hi", 1_000)
    await threads.record_outbound(
        tenant, "ann@shared.example", "<out@shared>", ["<in@shared>"], "Re: Hi", 1_000
    )
    await readable(store)
    events = await store.events.query(tenant, EventQuery())
    return World(r.session_id, r.message_id, t.turn_id, "shared-group", outbox_id, len(events))


def _push(tenant: str, content_hash: str) -> PushVersion:
    return PushVersion(
        tenant,
        content_hash,
        {"secret": tenant},
        {"secret": tenant},
        {},
        "seed",
        "m",
        None,
        ApplyMode.SESSION_CLOSE,
        500,
    )


def _ledger_entry(tenant: str, session_id: str) -> LedgerEntry:
    return LedgerEntry(
        tenant=tenant,
        execution_id="shared-exec",
        idempotency_key="shared-key",
        tool="refund",
        policy=SideEffectPolicy.IRREVERSIBLE,
        status=LedgerStatus.STARTED,
        session_id=session_id,
        group_id="shared-group",
        turn_id="shared-turn",
        customer="shared-customer",
        args={"secret": tenant},
        started_at_ms=1_000,
    )


def _agent_session(tenant: str, session_id: str) -> AgentSessionRow:
    return AgentSessionRow(
        tenant=tenant,
        row_id="shared-row",
        session_id=session_id,
        agent="support",
        profile="orders",
        status=AgentSessionStatus.AWAITING_USER,
        created_at_ms=1_000,
        last_interaction_at_ms=1_000,
        agent_session_id="shared-as",
        pending_ask_id="shared-ask",
        pending_question=f"secret of {tenant}?",
        execution_key="shared-key",
    )


def _dead_letter(tenant: str, dead_letter_id: str, session_id: str) -> DeadLetter:
    return DeadLetter(
        tenant=tenant,
        dead_letter_id=dead_letter_id,
        session_id=session_id,
        agent="support",
        turn_id="shared-turn",
        group_id="shared-group",
        trace_id="tr",
        pipeline="agent_service",
        error="failed",
        attempts=3,
        created_at_ms=1_000,
        request={"secret": tenant},
    )


ReadCase = Callable[[Store, World, VirtualClock], Awaitable[Any]]

READS: dict[str, ReadCase] = {
    "messages.get": lambda s, b, c: s.messages.get(A, b.message_id),
    "messages.find_by_provider_id": lambda s, b, c: s.messages.find_by_provider_id(
        A, Channel.WHATSAPP, "wamid.shared"
    ),
    "messages.read_range": lambda s, b, c: s.messages.read_range(A, b.session_id, 0, 99),
    "messages.recent": lambda s, b, c: s.messages.recent(A, b.session_id, 99, 10),
    "sessions.get": lambda s, b, c: s.sessions.get(A, b.session_id),
    "sessions.find_open": lambda s, b, c: s.sessions.find_open(
        A, key(tenant=B, customer="shared-customer")
    ),
    "sessions.list_sessions": lambda s, b, c: s.sessions.list_sessions(
        A, SessionFilter(customer="shared-customer")
    ),
    "turns.get": lambda s, b, c: s.turns.get(A, b.turn_id),
    "turns.live_turn": lambda s, b, c: s.turns.live_turn(A, b.session_id),
    "turns.list_turns": lambda s, b, c: s.turns.list_turns(A, b.session_id),
    "turns.get_group": lambda s, b, c: s.turns.get_group(A, b.group_id),
    "turns.get_record": lambda s, b, c: s.turns.get_record(A, b.turn_id),
    "events.query": lambda s, b, c: s.events.query(A, EventQuery(session_id=b.session_id)),
    "events.last_id": lambda s, b, c: _last_event_id(s),
    "outbox.get": lambda s, b, c: s.outbox.get(A, b.outbox_id),
    "outbox.undelivered": lambda s, b, c: s.outbox.undelivered(A, b.session_id),
    "outbox.find_by_provider_id": lambda s, b, c: s.outbox.find_by_provider_id(A, "wamid.out"),
    "outbox.for_session": lambda s, b, c: s.outbox.for_session(A, b.session_id),
    "memo.recall": lambda s, b, c: _recall(s),
    "lease.current": lambda s, b, c: s.lease.current(A, b.session_id),
    "lease.acquire": lambda s, b, c: _acquire_is_separate(s, b),
    "lease.renew": lambda s, b, c: _renew_foreign(s, b, c),
    "lease.release": lambda s, b, c: _release_foreign(s, b, c),
    "timers.due": lambda s, b, c: s.timers.due(A, 10**13),
    "timers.get": lambda s, b, c: s.timers.get(A, b.session_id, "window"),
    "ledger.get": lambda s, b, c: s.ledger.get(A, "shared-exec"),
    "ledger.active": lambda s, b, c: s.ledger.active(A, "shared-key", 2_000),
    "ledger.query": lambda s, b, c: s.ledger.query(A, LedgerQuery(customer="shared-customer")),
    "requests.find": lambda s, b, c: s.requests.find(A, "shared-idem"),
    "identities.of_customer": lambda s, b, c: s.identities.of_customer(A, "shared-cust"),
    "identities.owner": lambda s, b, c: s.identities.owner(A, SHARED_WA),
    "identities.linked": lambda s, b, c: _linked(s),
    "identities.routed_session": lambda s, b, c: s.identities.routed_session(A, SHARED_SMS, 10**13),
    "email_threads.find_customer": lambda s, b, c: s.email_threads.find_customer(
        A, "<out@shared>", ["<out@shared>"]
    ),
    "email_threads.reply_context": lambda s, b, c: s.email_threads.reply_context(
        A, "ann@shared.example"
    ),
    "agent_sessions.open_for": lambda s, b, c: s.agent_sessions.open_for(A, b.session_id),
    "agent_sessions.latest_for": lambda s, b, c: s.agent_sessions.latest_for(
        A, b.session_id, "support"
    ),
    "agent_sessions.list_for": lambda s, b, c: _listed(s.agent_sessions.list_for(A, b.session_id)),
    "agent_sessions.by_agent_session": lambda s, b, c: s.agent_sessions.by_agent_session(
        A, "shared-as"
    ),
    "dead_letters.get": lambda s, b, c: s.dead_letters.get(A, "shared-dl"),
    "dead_letters.list": lambda s, b, c: _listed(s.dead_letters.list(A, session_id=b.session_id)),
    "dead_letters.pending_replay": lambda s, b, c: s.dead_letters.pending_replay(A, b.session_id),
    "config_versions.get": lambda s, b, c: s.config_versions.get(A, 1),
    "config_versions.by_hash": lambda s, b, c: s.config_versions.by_hash(A, "sha256:shared-1"),
    "config_versions.history": lambda s, b, c: s.config_versions.history(A),
    "config_versions.pointer": lambda s, b, c: s.config_versions.pointer(A),
    "config_versions.arm_stats": lambda s, b, c: _arm_stats(s),
    "config_versions.open_sessions_on": lambda s, b, c: _open_on(s),
    # A's own records of the same ids: B's thread must not see them (checked below).
    "email_threads.record_inbound": lambda s, b, c: s.email_threads.record_inbound(
        A, "ann@shared.example", "<in@shared>", [], "mine", 2_000
    ),
    "email_threads.record_outbound": lambda s, b, c: s.email_threads.record_outbound(
        A, "mallory@a.example", "<out-a@shared>", ["<out@shared>"], "mine", 2_000
    ),
}


async def _arm_stats(store: Store) -> Any:
    stats = await store.config_versions.arm_stats(A, 1, 0)
    return None if stats.turns == 0 else stats


async def _open_on(store: Store) -> list[str]:
    return [
        *await store.config_versions.open_sessions_on(A, 1),
        *await store.config_versions.open_sessions_on(A, 2),
    ]


async def _listed(found: Awaitable[Sequence[Any]]) -> list[Any]:
    return list(await found)


async def _linked(store: Store) -> Any:
    return await store.identities.linked(A, SHARED_WA) or None


async def _recall(store: Store) -> Any:
    found, value = await store.memo.recall(A, MemoKey("shared-group", "step", "fp"))
    return value if found else None


async def _acquire_is_separate(store: Store, b: World) -> Any:
    # B holds a live lease on its session; A acquiring "the same" session id must not see
    # or steal it: it gets its own lease (fence 1) and B's stays in place.
    lease = await store.lease.acquire(A, b.session_id, "intruder", 1_000)
    assert lease is not None and lease.fence == 1 and lease.tenant == A
    theirs = await store.lease.current(B, b.session_id)
    assert theirs is not None and theirs.holder == "holder"
    return None


async def _renew_foreign(store: Store, b: World, clock: VirtualClock) -> Any:
    theirs = await store.lease.current(B, b.session_id)
    assert theirs is not None
    forged = acf.ports.lease.Lease(A, b.session_id, theirs.holder, theirs.fence, 0)
    return await store.lease.renew(forged, 1_000)


async def _release_foreign(store: Store, b: World, clock: VirtualClock) -> Any:
    theirs = await store.lease.current(B, b.session_id)
    assert theirs is not None
    forged = acf.ports.lease.Lease(A, b.session_id, theirs.holder, theirs.fence, 0)
    await store.lease.release(forged)
    assert await store.lease.current(B, b.session_id) == theirs
    return None


async def _last_event_id(store: Store) -> int | None:
    """Tenant A's latest event id, None when it has none (B's events do not count)."""
    return await store.events.last_id(A) or None


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == (False, None)


async def test_every_read_as_tenant_a_finds_nothing_of_b(store: Store, clock: VirtualClock) -> None:
    b = await _seed(store, B, clock)
    for name, case in READS.items():
        assert _empty(await case(store, b, clock)), f"{name} returned tenant B's data"
    # and B's own view is intact
    assert await store.messages.get(B, b.message_id) is not None
    context = await store.email_threads.reply_context(B, "ann@shared.example")
    assert context is not None and context.subject == "Hi"
    assert await store.email_threads.find_customer(B, "<out@shared>", []) == "ann@shared.example"
    assert await store.agent_sessions.open_for(B, b.session_id) == _agent_session(B, b.session_id)
    assert [d.dead_letter_id for d in await store.dead_letters.list(B)] == [
        "shared-dl-2",
        "shared-dl",
    ]
    await readable(store)
    assert len(await store.events.query(B, EventQuery())) == b.event_count
    pointer = await store.config_versions.pointer(B)
    assert pointer is not None and (pointer.live, pointer.canary) == (1, 2)
    assert (await store.config_versions.arm_stats(B, 1, 0)).turns == 1
    session = await store.sessions.get(B, b.session_id)
    assert session is not None and session.config_version in (1, 2)


def _writes(b: World, clock: VirtualClock) -> dict[type[WriteOp[Any]], WriteOp[Any]]:
    k_b = key(tenant=B, customer="shared-customer")
    return {
        AppendMessage: AppendMessage(message(k_b, "wamid.new"), 2_000, "tr"),
        PatchState: PatchState(b.session_id, 0, {"slots": {"x": 1}}, 2_000),
        ConsumeRange: ConsumeRange(b.session_id, 0, 1, False, 2_000),
        FlagSession: FlagSession(b.session_id, True, "x", 2_000),
        OpenGroup: OpenGroup(TurnGroup(B, "g2", b.session_id, GroupStatus.OPEN, 0, 1, 1)),
        UpdateGroup: UpdateGroup(b.group_id, GroupStatus.FAILED, 0, 0),
        CreateTurn: CreateTurn(turn(B, b.session_id)),
        MoveTurn: MoveTurn(b.turn_id, TurnPhase.RUNNING, TurnPhase.FAILED, 1, 2_000),
        MarkIrreversibleStarted: MarkIrreversibleStarted(b.turn_id, 1, True, 2_000),
        SaveTurnRecord: SaveTurnRecord(
            TurnRecord(Correlation(B, "tr", b.session_id, "t-new"), TurnPhase.FAILED, 0, 1, 1, 1, 2)
        ),
        AppendEvent: AppendEvent(FabricEvent(EventKind.TURN_FAILED, 1, Correlation(B, "tr"))),
        EnqueueReply: None,  # type: ignore[dict-item]  # creates A's own row: checked below
        RecordAttempt: RecordAttempt(b.outbox_id, 2_000),
        RecordPartsSent: RecordPartsSent(b.outbox_id, 1, 2_000),
        CutUnsentPart: CutUnsentPart(b.outbox_id, 2_000),
        ApplyDeliveryStatus: ApplyDeliveryStatus(b.outbox_id, DeliveryStatus.READ, 2_000),
        RememberStep: None,  # type: ignore[dict-item]  # creates A's own row: checked below
        CheckFence: CheckFence(b.session_id, 1, clock.now_ms()),
        SetTimer: SetTimer(Timer(B, b.session_id, "window", 1)),
        CancelTimer: CancelTimer(b.session_id, "window"),
        BeginExecution: None,  # type: ignore[dict-item]  # creates A's own row: checked below
        FinishExecution: FinishExecution("shared-exec", LedgerStatus.SUCCEEDED, 2_000),
        SaveResponse: SaveResponse("shared-idem", 202, {"theirs": True}),
        ReserveRequest: None,  # type: ignore[dict-item]  # creates A's own row: checked below
        LinkIdentities: LinkIdentities("mine", (SHARED_WA, SHARED_SMS), 2_000),
        UnlinkIdentity: UnlinkIdentity("shared-cust", SHARED_WA),
        RouteToSession: RouteToSession("support", SHARED_SMS, b.session_id, 2_000),
        EnqueueFallback: EnqueueFallback(
            b.outbox_id, SHARED_SMS, (), "x", Correlation(A, "tr"), 2_000
        ),
        SaveAgentSession: SaveAgentSession(
            replace(_agent_session(B, b.session_id), status=AgentSessionStatus.FAILED)
        ),
        RecordDeadLetter: RecordDeadLetter(_dead_letter(B, "dl-new", b.session_id)),
        RequestReplay: RequestReplay("shared-dl-2", 2_000),
        FinishReplay: FinishReplay("shared-dl", "t-new", 2_000),
        # A's own ops naming B's versions and session: A has none of them.
        PushVersion: None,  # type: ignore[dict-item]  # creates A's own row: checked below
        PromoteVersion: PromoteVersion(A, 2, 2_000, "intruder"),
        StartCanary: StartCanary(A, 2, 10, 2_000, "intruder"),
        SetCanaryShare: SetCanaryShare(A, 2, 100, 2_000, "intruder"),
        RollbackCanary: RollbackCanary(A, 2, "intruder", 2_000, "intruder"),
        RollbackLive: RollbackLive(A, 2_000, "intruder", "intruder"),
        RecordGate: RecordGate(A, 1, "scenarios", False, {}, 2_000),
        RepinSession: RepinSession(A, b.session_id, 1, 2, "intruder", None, 2_000),
        CloseSession: CloseSession(A, b.session_id, 2_000, "intruder", 0),
    }


async def test_no_write_as_tenant_a_changes_b(store: Store, clock: VirtualClock) -> None:
    b = await _seed(store, B, clock)

    async def snapshot() -> tuple[Any, ...]:
        await readable(store)
        return (
            await store.sessions.get(B, b.session_id),
            await store.turns.list_turns(B, b.session_id),
            await store.turns.get_group(B, b.group_id),
            await store.outbox.for_session(B, b.session_id),
            await store.events.query(B, EventQuery()),
            await store.timers.get(B, b.session_id, "window"),
            await store.memo.recall(B, MemoKey("shared-group", "step", "fp")),
            await store.lease.current(B, b.session_id),
            await store.ledger.query(B, LedgerQuery()),
            await store.requests.find(B, "shared-idem"),
            await store.identities.of_customer(B, "shared-cust"),
            await store.identities.routed_session(B, SHARED_SMS, 10**13),
            await store.agent_sessions.list_for(B, b.session_id),
            await store.dead_letters.list(B),
            await store.config_versions.history(B),
            await store.config_versions.pointer(B),
        )

    before = await snapshot()
    for op_type, op in _writes(b, clock).items():
        if op is None:
            continue
        with contextlib.suppress(Conflict, InvalidValue):
            await store.uow.commit(A, [op])
        assert await snapshot() == before, f"{op_type.__name__} as tenant A changed tenant B"
        # The same op naming tenant B is refused outright in A's unit.
        if hasattr(op, "tenant") and isinstance(op.tenant, str):
            with pytest.raises(InvalidValue):
                await store.uow.commit(A, [replace(op, tenant=B)])  # type: ignore[type-var]
    # Writes that create rows create them for A only.
    await store.uow.commit(
        A,
        [
            EnqueueReply(b.session_id, b.turn_id, 0, {"text": "mine"}, 3_000),
            RememberStep(MemoKey("shared-group", "step", "fp"), {"secret": A}, 3_000),
            BeginExecution(replace(_ledger_entry(A, b.session_id), args={"secret": A})),
            ReserveRequest("shared-idem", "h2", 3_000),
            SaveResponse("shared-idem", 202, {"secret": A}),
            # The same row id, conversation id and open status as B's open row: A's own.
            SaveAgentSession(_agent_session(A, b.session_id)),
            RecordDeadLetter(_dead_letter(A, "shared-dl-2", b.session_id)),
            RequestReplay("shared-dl-2", 3_000),
            FinishReplay("shared-dl-2", "t-a", 3_000),
        ],
    )
    # The same content as B's v1 is A's own v1: a push never finds another tenant's version.
    pushed = _push(A, "sha256:shared-1")
    result = (await store.uow.commit(A, [pushed])).get(pushed)
    assert result.created and result.version.number == 1 and result.version.tenant == A
    assert result.version.source == {"secret": A}
    assert await snapshot() == before
    own = await store.requests.find(A, "shared-idem")
    assert own is not None and own.body == {"secret": A}
    mine = await store.ledger.get(A, "shared-exec")
    assert mine is not None and mine.args == {"secret": A}
    assert (await store.memo.recall(A, MemoKey("shared-group", "step", "fp")))[1] == {"secret": A}
    assert await store.agent_sessions.open_for(A, b.session_id) == _agent_session(A, b.session_id)
    letter = await store.dead_letters.get(A, "shared-dl-2")
    assert letter is not None and letter.request == {"secret": A}
    assert letter.replay_turn_id == "t-a"


def test_every_port_method_and_write_op_has_an_isolation_case() -> None:
    """Here or in ``test_tenant_isolation_people.py`` (handoffs, blocks, counters)."""
    methods = {
        f"{attr}.{name}"
        for attr, proto in {**PORTS, **PEOPLE_PORTS}.items()
        for name, member in inspect.getmembers(proto)
        if not name.startswith("_") and inspect.isfunction(member)
    }
    assert methods - {*READS, *PEOPLE_READS} == set(), "add isolation cases for these methods"
    ops = {cls for cls in _all_subclasses(WriteOp) if cls.__module__.startswith("acf.ports")}
    dummy = World("s", "m", "t", "g", 1, 0)
    cases = {*_writes(dummy, VirtualClock()), *people_writes("s", "h", "b")}
    assert ops - cases == set(), "add cases for these write ops"


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        # dataclass(slots=True) replaces the class; keep only the one the module exports.
        if getattr(sys.modules[sub.__module__], sub.__name__, None) is sub:
            found.add(sub)
        found |= _all_subclasses(sub)
    return found


@pytest.mark.parametrize("tenant", [A, B])
async def test_store_methods_take_the_tenant_first(tenant: str) -> None:
    """Every read method's first parameter is the tenant (or a value carrying it)."""
    for attr, proto in {**PORTS, **PEOPLE_PORTS}.items():
        for name, member in inspect.getmembers(proto, inspect.isfunction):
            if name.startswith("_"):
                continue
            params = list(inspect.signature(member).parameters)[1:]
            assert params[0] in {"tenant", "lease"}, f"{attr}.{name} does not start with tenant"
