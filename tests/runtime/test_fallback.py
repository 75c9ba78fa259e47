"""The fallback ladder and conversation continuity on the embedded runtime (DESIGN §9).

A real SQLite file, the real ingress, runtime and relay, a virtual clock; the channel is a
recording one that can refuse per channel: definitely (a 4xx) or transiently (a 5xx, a
timeout). ana wrote on WhatsApp and linked her phone number for SMS; the tenant's
WhatsApp ladder is [sms].
"""

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from acf.domain.agent_settings import AgentSettings
from acf.domain.channels import Channel
from acf.domain.events import EventKind, FabricEvent
from acf.domain.fallback import LADDER_EXHAUSTED, Route
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, ChannelPolicy
from acf.domain.replies import PipelineResult
from acf.domain.signals import DeliveryStatus, DeliveryStatusSignal
from acf.ports.channel_sender import DeliveryError, OutboundMessage, SendReceipt
from acf.ports.event_store import EventQuery
from acf.ports.identities import LinkIdentities
from acf.ports.outbox import OutboxRow
from acf.ports.pipeline import TurnContext
from acf.service.continuity import NotLinked, continue_on
from acf.service.delivery_statuses import DeliveryStatuses, StatusOutcome
from acf.testing.channel import RecordingChannel
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.invariants import check_all

WA = Route(Channel.WHATSAPP, "15550001")
SMS = Route(Channel.SMS, "+15550001")


class PerChannel(RecordingChannel):
    """A recording channel whose refusals are scripted per channel; ``refused`` keeps
    every refused call as (channel, outbox id, definite)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.script: dict[Channel, list[bool]] = {}
        self.refused: list[tuple[Channel, int, bool]] = []

    def refuse(self, channel: Channel, *definite: bool) -> None:
        self.script.setdefault(channel, []).extend(definite)

    async def send(self, message: OutboundMessage) -> SendReceipt:
        script = self.script.get(message.key.channel)
        if script:
            definite = script.pop(0)
            self.refused.append((message.key.channel, message.outbox_id, definite))
            raise DeliveryError(f"{message.key.channel} refused (scripted)", definite)
        return await super().send(message)


def options(ladder: tuple[Channel, ...] = (Channel.SMS,)) -> HarnessOptions:
    policies = dict(DEFAULT_CHANNEL_POLICIES)
    wa = policies[Channel.WHATSAPP]
    policies[Channel.WHATSAPP] = ChannelPolicy(
        wa.mode, wa.window_ms, wa.min_window_ms, wa.max_window_ms, wa.typing_grace_ms, ladder
    )
    return HarnessOptions(settings=AgentSettings(channel_policies=policies))


async def started(tmp_path: Path, link: bool = True, **kw: Any) -> tuple[Harness, PerChannel]:
    h = Harness(tmp_path, options(**kw))
    channel = PerChannel(h.clock)
    h.channel = channel
    await h.start()
    if link:
        await h.store.uow.commit(TENANT, [LinkIdentities("ana", (WA, SMS), 0)])
    return h, channel


async def events(h: Harness, *kinds: EventKind) -> list[FabricEvent]:
    return await h.store.events.query(TENANT, EventQuery(kinds=kinds, limit=10_000))


async def rows(h: Harness, session_id: str) -> list[OutboxRow]:
    return await h.store.outbox.for_session(TENANT, session_id)


def where(channel: PerChannel) -> list[tuple[Channel, str, str]]:
    return [(s.key.channel, s.key.customer, s.text) for s in channel.sends]


async def no_problems(h: Harness, channel: PerChannel) -> None:
    assert await check_all(h.store, [TENANT], channel, h.tally) == []


async def test_a_definite_refusal_sends_one_copy_to_the_linked_number(tmp_path: Path) -> None:
    h, channel = await started(tmp_path)
    try:
        channel.refuse(Channel.WHATSAPP, True)
        accepted = await h.send(WA.address, "where is my order?", Channel.WHATSAPP)
        await h.run_until_idle()
        assert where(channel) == [(Channel.SMS, SMS.address, "echo: where is my order?")]
        original, copy = await rows(h, accepted.session_id)
        assert (original.status, original.route) == (DeliveryStatus.FAILED, WA)
        assert (copy.status, copy.route, copy.fallback_of) == (
            DeliveryStatus.SENT,
            SMS,
            original.outbox_id,
        )
        (failed,) = await events(h, EventKind.RESPONSE_FAILED)
        assert failed.data["fallback"] == {"to": SMS.as_payload(), "reason": failed_reason()}
        (fallback,) = await events(h, EventKind.RESPONSE_FALLBACK)
        assert fallback.data["from"] == WA.as_payload()
        assert fallback.data["to"] == SMS.as_payload()
        assert fallback.data["fallback_outbox_id"] == copy.outbox_id
        assert fallback.correlation.turn_id == original.turn_id
        assert fallback.correlation.agent_version is not None
        # A crash and a new runtime on the same file: nothing is sent or queued again.
        await h.crash()
        await h.run_until_idle()
        assert len(channel.sends) == 1 and len(await rows(h, accepted.session_id)) == 2
        await no_problems(h, channel)
    finally:
        await h.close()


def failed_reason() -> str:
    return "whatsapp refused the reply definitely"


async def test_a_provider_outage_retries_then_falls_back_without_duplicates(
    tmp_path: Path,
) -> None:
    h, channel = await started(tmp_path)
    try:
        # Three 5xx/timeouts (outcome unknown: retried, never a fallback), then a 4xx.
        channel.refuse(Channel.WHATSAPP, False, False, False, True)
        accepted = await h.send(WA.address, "hello?", Channel.WHATSAPP)
        await h.run_until_idle()
        assert [r[0] for r in channel.refused] == [Channel.WHATSAPP] * 4
        assert len({r[1] for r in channel.refused}) == 1  # one row, retried
        assert where(channel) == [(Channel.SMS, SMS.address, "echo: hello?")]
        original, copy = await rows(h, accepted.session_id)
        assert (original.attempts, copy.attempts) == (4, 1)
        assert len(await events(h, EventKind.RESPONSE_FALLBACK)) == 1
        assert Counter(s.outbox_id for s in channel.sends) == {copy.outbox_id: 1}
        await no_problems(h, channel)
    finally:
        await h.close()


async def test_a_transient_outage_never_falls_back(tmp_path: Path) -> None:
    h, channel = await started(tmp_path)
    try:
        channel.refuse(Channel.WHATSAPP, *[False] * 5)
        accepted = await h.send(WA.address, "hello?", Channel.WHATSAPP)
        await h.run_until_idle()
        assert where(channel) == [(Channel.WHATSAPP, WA.address, "echo: hello?")]
        (row,) = await rows(h, accepted.session_id)
        assert (row.status, row.attempts) == (DeliveryStatus.SENT, 6)
        assert await events(h, EventKind.RESPONSE_FALLBACK, EventKind.RESPONSE_FAILED) == []
        await no_problems(h, channel)
    finally:
        await h.close()


async def test_a_failed_status_after_acceptance_falls_back_once(tmp_path: Path) -> None:
    h, channel = await started(tmp_path)
    try:
        accepted = await h.send(WA.address, "hi there", Channel.WHATSAPP)
        await h.run_until_idle()
        (sent,) = channel.sends
        statuses = DeliveryStatuses(h.store, h.agents, h.clock, h.runtime.parts.poke_relay)
        failed = DeliveryStatusSignal(TENANT, sent.provider_message_id, DeliveryStatus.FAILED, 1)
        # The provider's webhook, delivered twice at once and then retried once more.
        outcomes = await asyncio.gather(statuses.apply(failed), statuses.apply(failed))
        assert sorted(outcomes) == [StatusOutcome.APPLIED, StatusOutcome.STALE]
        assert await statuses.apply(failed) is StatusOutcome.STALE
        await h.run_until_idle()
        assert where(channel) == [
            (Channel.WHATSAPP, WA.address, "echo: hi there"),
            (Channel.SMS, SMS.address, "echo: hi there"),
        ]
        assert [r.status for r in await rows(h, accepted.session_id)] == [
            DeliveryStatus.FAILED,
            DeliveryStatus.SENT,
        ]
        (status,) = await events(h, EventKind.RESPONSE_STATUS)
        assert status.data["fallback"]["to"] == SMS.as_payload()
        assert len(await events(h, EventKind.RESPONSE_FALLBACK)) == 1
        await no_problems(h, channel)
    finally:
        await h.close()


async def test_the_customers_sms_reply_joins_the_session_and_is_answered_by_sms(
    tmp_path: Path,
) -> None:
    h, channel = await started(tmp_path)
    try:
        channel.refuse(Channel.WHATSAPP, True)
        first = await h.send(WA.address, "where is my order?", Channel.WHATSAPP)
        await h.run_until_idle()
        answer = await h.send(SMS.address, "order 42 please", Channel.SMS)
        assert (answer.session_id, answer.seq) == (first.session_id, 2)
        assert await h.store.sessions.find_open(TENANT, h.key(SMS.address, Channel.SMS)) is None
        await h.run_until_idle()
        assert where(channel)[-1] == (Channel.SMS, SMS.address, "echo: order 42 please")
        assert len(channel.sends) == 2
        await no_problems(h, channel)
    finally:
        await h.close()


async def test_without_a_linked_address_the_row_stays_failed_with_a_reason(
    tmp_path: Path,
) -> None:
    h, channel = await started(tmp_path, link=False)
    try:
        channel.refuse(Channel.WHATSAPP, True)
        accepted = await h.send(WA.address, "hello?", Channel.WHATSAPP)
        await h.run_until_idle()
        assert channel.sends == []
        (row,) = await rows(h, accepted.session_id)
        assert row.status is DeliveryStatus.FAILED
        (failed,) = await events(h, EventKind.RESPONSE_FAILED)
        assert failed.data["fallback"] == {"to": None, "reason": "no linked address on sms"}
        assert await events(h, EventKind.RESPONSE_FALLBACK) == []
    finally:
        await h.close()


async def test_a_refused_copy_goes_down_the_ladder_and_then_stops(tmp_path: Path) -> None:
    mail = Route(Channel.EMAIL, "ana@example.com")
    h, channel = await started(tmp_path, ladder=(Channel.SMS, Channel.EMAIL))
    try:
        await h.store.uow.commit(TENANT, [LinkIdentities("ana", (mail,), 0)])
        channel.refuse(Channel.WHATSAPP, True)
        channel.refuse(Channel.SMS, True)
        channel.refuse(Channel.EMAIL, True)
        accepted = await h.send(WA.address, "hello?", Channel.WHATSAPP)
        await h.run_until_idle()
        assert [(c, d) for c, _, d in channel.refused] == [
            (Channel.WHATSAPP, True),
            (Channel.SMS, True),
            (Channel.EMAIL, True),
        ]
        chain = await rows(h, accepted.session_id)
        assert [r.route for r in chain] == [WA, SMS, mail]
        assert all(r.status is DeliveryStatus.FAILED for r in chain)
        assert chain[2].payload["fallback"]["tried"] == ["whatsapp", "sms"]
        last = (await events(h, EventKind.RESPONSE_FAILED))[-1]
        assert last.data["fallback"] == {"to": None, "reason": LADDER_EXHAUSTED}
    finally:
        await h.close()


async def test_an_operator_continues_the_session_on_sms(tmp_path: Path) -> None:
    h, channel = await started(tmp_path)
    try:
        first = await h.send(WA.address, "call me later", Channel.WHATSAPP)
        await h.run_until_idle()
        session = await h.store.sessions.get(TENANT, first.session_id)
        assert session is not None
        with pytest.raises(NotLinked, match="no telegram address"):
            await continue_on(h.store, h.clock, session, Channel.TELEGRAM, "hello")
        done = await continue_on(h.store, h.clock, session, Channel.SMS, "We moved to SMS.")
        assert done.route == SMS and done.outbox_id is not None
        h.runtime.parts.poke_relay(TENANT, first.session_id)
        await h.run_until_idle()
        assert where(channel)[-1] == (Channel.SMS, SMS.address, "We moved to SMS.")
        answer = await h.send(SMS.address, "ok, here I am", Channel.SMS)
        assert (answer.session_id, answer.seq) == (first.session_id, 2)
        await h.run_until_idle()
        assert where(channel)[-1] == (Channel.SMS, SMS.address, "echo: ok, here I am")
        (continued,) = await events(h, EventKind.SESSION_CONTINUED)
        assert continued.data == {**SMS.as_payload(), "notified": True}
        assert await check_all(h.store, [TENANT], channel, h.tally) == []  # the notice too
    finally:
        await h.close()


class Recalls:
    """Answers with the replies its context says the conversation had."""

    name = "recalls"
    version = "1"

    async def run(self, ctx: TurnContext) -> PipelineResult:
        said = [str(r.get("text")) for r in ctx.replies_history]
        return PipelineResult.reply(f"before: {said}")


async def test_a_reply_that_fell_back_is_in_the_history_once(tmp_path: Path) -> None:
    h = Harness(tmp_path, HarnessOptions(settings=options().settings, pipeline=Recalls()))
    channel = PerChannel(h.clock)
    h.channel = channel
    await h.start()
    try:
        await h.store.uow.commit(TENANT, [LinkIdentities("ana", (WA, SMS), 0)])
        channel.refuse(Channel.WHATSAPP, True)
        await h.send(WA.address, "hello", Channel.WHATSAPP)
        await h.run_until_idle()
        await h.send(SMS.address, "and now?", Channel.SMS)
        await h.run_until_idle()
        assert [s.text for s in channel.sends] == ["before: []", "before: ['before: []']"]
    finally:
        await h.close()
