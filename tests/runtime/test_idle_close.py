"""Idle close on the embedded runtime and the virtual clock (DESIGN §15, issue 21): a session
idle past its channel's timeout closes with ``session.closed``, not before; a running turn
holds it until the turn has committed; unconsumed messages hold it; the next message opens
a new session, and the old one stays readable."""

import asyncio
from pathlib import Path

from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind
from acf.domain.idle_close import Hold
from acf.domain.ids import new_id
from acf.domain.messages import NewMessage
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES
from acf.domain.replies import PipelineResult
from acf.ports.event_store import EventQuery
from acf.ports.message_log import AppendMessage
from acf.ports.pipeline import TurnContext
from acf.ports.session_store import SessionRecord, SessionStatus
from acf.service.lease_keeper import LeaseSettings
from acf.testing.harness import TENANT, Harness, HarnessOptions

DAY_MS = 86_400_000
SWEEP_MS = 60_000


async def session(h: Harness, session_id: str) -> SessionRecord:
    record = await h.store.sessions.get(TENANT, session_id)
    assert record is not None
    return record


async def closed_events(h: Harness, session_id: str) -> list[dict[str, object]]:
    events = await h.store.events.query(
        TENANT, EventQuery(session_id=session_id, kinds=(EventKind.SESSION_CLOSED,))
    )
    return [dict(e.data) for e in events]


async def advance_to(h: Harness, at_ms: int) -> None:
    await h.advance(at_ms - h.clock.now_ms())


async def test_closes_after_the_timeout_not_before_and_the_next_message_opens_a_new_session(
    tmp_path: Path,
) -> None:
    async with Harness(tmp_path) as h:
        first = await h.send("ana", "Hello.")
        await h.run_until_idle()
        assert h.replies("ana") == ["echo: Hello."]
        old = first.session_id
        idle_since = (await session(h, old)).updated_at_ms  # the turn's commit

        await advance_to(h, idle_since + DAY_MS - 1)
        assert (await session(h, old)).status is SessionStatus.OPEN
        assert await closed_events(h, old) == []

        await advance_to(h, idle_since + DAY_MS + SWEEP_MS)
        closed = await session(h, old)
        assert closed.status is SessionStatus.CLOSED
        assert closed.closed_at_ms is not None
        assert idle_since + DAY_MS <= closed.closed_at_ms <= idle_since + DAY_MS + SWEEP_MS
        assert await closed_events(h, old) == [{"reason": "idle", "idle_since_ms": idle_since}]
        assert await h.store.lease.current(TENANT, old) is None  # released

        second = await h.send("ana", "Hello again.")
        await h.run_until_idle()
        assert second.session_id != old
        assert second.seq == 1  # a fresh window: the new session's first message
        assert h.replies("ana") == ["echo: Hello.", "echo: Hello again."]
        new = await session(h, second.session_id)
        assert new.status is SessionStatus.OPEN
        assert (new.last_seq, new.consumed_seq) == (1, 1)
        opened = await h.store.sessions.find_open(TENANT, h.key("ana"))
        assert opened is not None and opened.session_id == second.session_id

        # The old session stays readable: its messages, turns and events.
        messages = await h.store.messages.read_range(TENANT, old, 0, 1)
        assert [m.text for m in messages] == ["Hello."]
        assert len(await h.store.turns.list_turns(TENANT, old)) == 1
        kinds = {e.kind for e in await h.store.events.query(TENANT, EventQuery(session_id=old))}
        assert {EventKind.MESSAGE_RECEIVED, EventKind.SESSION_CLOSED} <= kinds


class Gated:
    """Answers once ``gate`` opens: a turn that is running while time passes."""

    name = "gated"
    version = "1"

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def run(self, ctx: TurnContext) -> PipelineResult:
        await self.gate.wait()
        return PipelineResult.reply("done")


async def test_a_running_turn_holds_the_close_until_it_has_committed(tmp_path: Path) -> None:
    pipeline = Gated()
    options = HarnessOptions(
        pipeline=pipeline,
        settings=AgentSettings(deadline_ms=3 * DAY_MS),
        # Few renewals over the simulated days (each is a store write the harness settles).
        lease=LeaseSettings(ttl_ms=3_600_000, renew_every_ms=1_800_000),
    )
    async with Harness(tmp_path, options) as h:
        accepted = await h.send("ana", "Refund order 1001.")
        sid = accepted.session_id
        await h.advance(5_000)
        live = await h.store.turns.live_turn(TENANT, sid)
        assert live is not None  # running
        started = h.clock.now_ms()

        # Far past the timeout the turn still runs: the session stays open.
        await h.advance(DAY_MS + 10 * SWEEP_MS)
        assert (await session(h, sid)).status is SessionStatus.OPEN
        # A close attempted now cannot even take the session: its lease is the turn's.
        closer = h.runtime.idle_closer
        assert closer is not None
        assert await closer.close_if_idle(TENANT, sid) is None
        assert (await h.store.turns.live_turn(TENANT, sid)) is not None

        pipeline.gate.set()
        await h.run_until_idle()
        assert h.replies("ana") == ["done"]  # the turn committed and was delivered
        committed = await session(h, sid)
        assert committed.status is SessionStatus.OPEN
        assert committed.updated_at_ms > started + DAY_MS  # its commit is new activity

        await advance_to(h, committed.updated_at_ms + DAY_MS - 1)
        assert (await session(h, sid)).status is SessionStatus.OPEN
        await advance_to(h, committed.updated_at_ms + DAY_MS + SWEEP_MS)
        assert (await session(h, sid)).status is SessionStatus.CLOSED
        assert await closed_events(h, sid) == [
            {"reason": "idle", "idle_since_ms": committed.updated_at_ms}
        ]


async def test_unconsumed_messages_hold_the_close_and_wake_the_session(tmp_path: Path) -> None:
    async with Harness(tmp_path) as h:
        # A message stored without a wake-up (as if the wake-up was lost): nobody runs it.
        op = AppendMessage(NewMessage(h.key("ana"), new_id(), text="Anyone there?"), 0, "t")
        sid = (await h.store.uow.commit(TENANT, [op])).get(op).session_id
        await h.advance(DAY_MS + 5 * SWEEP_MS)
        record = await session(h, sid)
        assert record.status is SessionStatus.OPEN
        assert record.has_unconsumed
        assert h.replies("ana") == []

        closer = h.runtime.idle_closer
        assert closer is not None
        decision = await closer.close_if_idle(TENANT, sid)
        assert decision is not None and decision.hold is Hold.UNCONSUMED
        await h.run_until_idle()  # the close woke the session: its driver answers
        assert h.replies("ana") == ["echo: Anyone there?"]
        assert (await session(h, sid)).status is SessionStatus.OPEN


async def test_each_channel_closes_after_its_own_timeout(tmp_path: Path) -> None:
    web = DEFAULT_CHANNEL_POLICIES[Channel.WEB]
    policies = dict(DEFAULT_CHANNEL_POLICIES)
    policies[Channel.WEB] = type(web)(
        web.mode,
        web.window_ms,
        web.min_window_ms,
        web.max_window_ms,
        web.typing_grace_ms,
        idle_timeout_s=2 * 86_400,
    )
    options = HarnessOptions(settings=AgentSettings(channel_policies=policies))
    async with Harness(tmp_path, options) as h:
        on_web = await h.send("ana", "Hello.", Channel.WEB)
        on_sms = await h.send("ana", "Hello.", Channel.SMS)
        await h.run_until_idle()
        web_since = (await session(h, on_web.session_id)).updated_at_ms
        sms_since = (await session(h, on_sms.session_id)).updated_at_ms

        await advance_to(h, max(web_since, sms_since) + DAY_MS + SWEEP_MS)
        assert (await session(h, on_sms.session_id)).status is SessionStatus.CLOSED
        assert (await session(h, on_web.session_id)).status is SessionStatus.OPEN

        await advance_to(h, web_since + 2 * DAY_MS - 1)
        assert (await session(h, on_web.session_id)).status is SessionStatus.OPEN
        await advance_to(h, web_since + 2 * DAY_MS + SWEEP_MS)
        assert (await session(h, on_web.session_id)).status is SessionStatus.CLOSED
