"""The relay's reads around a send: a correlation it cannot read never makes it send a
row again, and a row queued by another process while it sends goes right after."""

import asyncio
from pathlib import Path

import pytest

from acf.domain.signals import DeliveryStatus
from acf.ports.channel_sender import OutboundMessage, SendReceipt
from acf.ports.outbox import EnqueueReply
from acf.testing.channel import RecordingChannel
from acf.testing.harness import TENANT, Harness


async def test_a_correlation_that_cannot_be_read_sends_the_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(tmp_path)
    provider = RecordingChannel(h.clock)
    h.channel = provider
    await h.start()
    try:

        async def store_down(*args: object) -> None:
            raise ConnectionError("the store is down")

        monkeypatch.setattr(h.store.turns, "get", store_down)
        accepted = await h.send("c1", "hello")
        for _ in range(20):
            await h.advance(1_000)
        rows = await h.store.outbox.for_session(TENANT, accepted.session_id)
    finally:
        await h.close()
    assert len(provider.sends) == 1  # not again every second
    assert [(r.status, r.attempts) for r in rows] == [(DeliveryStatus.SENT, 1)]


class HeldSend(RecordingChannel):
    """Holds the first send until ``release`` is set."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.release = asyncio.Event()
        self.calls = 0

    async def send(self, message: OutboundMessage) -> SendReceipt:
        self.calls += 1
        if self.calls == 1:
            await self.release.wait()
        return await super().send(message)


async def test_a_row_queued_elsewhere_during_a_send_goes_right_after(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    provider = HeldSend(h.clock)
    h.channel = provider
    await h.start()
    other = await h.add_runtime()
    try:
        accepted = await h.send("c1", "hello")
        for _ in range(50):
            if provider.calls:
                break
            await h.advance(100)
        assert provider.calls == 1
        sid = accepted.session_id
        elsewhere = other if h.runtime._deliveries.active(TENANT, sid) else h.runtime
        # Another process commits the next reply and pokes its own relay, which finds the
        # delivery lease held: the holder's relay is the one to send it.
        await h.store.uow.commit(
            TENANT, [EnqueueReply(sid, "turn-2", 0, {"text": "second"}, h.clock.now_ms())]
        )
        elsewhere.parts.poke_relay(TENANT, sid)
        await h.settle()
        provider.release.set()
        await h.settle()
        started = h.clock.now_ms()
        while not any(s.text == "second" for s in provider.sends):
            assert h.clock.now_ms() - started < 500, "left to the recovery scan"
            await h.advance(50)
    finally:
        provider.release.set()
        await h.close()
