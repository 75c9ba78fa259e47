"""The relay's provider calls in flight are bounded per tenant: a tenant whose provider
hangs holds at most ``SENDS_PER_TENANT`` calls, and another tenant's replies still go."""

import asyncio
from pathlib import Path

from acf.ports.channel_sender import OutboundMessage, SendReceipt
from acf.service.relay import SENDS_PER_TENANT
from acf.testing.channel import RecordingChannel
from acf.testing.harness import TENANT, Harness, HarnessOptions

SLOW, OTHER = TENANT, "t2"


class HangingProvider(RecordingChannel):
    """SLOW's calls wait until released; counts the calls in flight per tenant."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.release = asyncio.Event()
        self.in_flight: dict[str, int] = {}
        self.most: dict[str, int] = {}

    async def send(self, message: OutboundMessage) -> SendReceipt:
        tenant = message.key.tenant
        self.in_flight[tenant] = self.in_flight.get(tenant, 0) + 1
        self.most[tenant] = max(self.most.get(tenant, 0), self.in_flight[tenant])
        try:
            if tenant == SLOW:
                await self.release.wait()
            return await super().send(message)
        finally:
            self.in_flight[tenant] -= 1


async def test_a_hanging_provider_holds_at_most_the_bound_and_no_other_tenant(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, HarnessOptions(tenants=(SLOW, OTHER)))
    provider = HangingProvider(h.clock)
    h.channel = provider
    await h.start()
    try:
        for i in range(SENDS_PER_TENANT + 8):
            await h.send(f"c{i}", "hello", tenant=SLOW)
        await h.send("d1", "hello", tenant=OTHER)
        for _ in range(100):  # the windows close, the turns run, the relays call
            if provider.in_flight.get(SLOW) == SENDS_PER_TENANT and provider.sends:
                break
            due = h.clock.next_due_ms()
            if due is not None:
                h.clock.advance_to(due)
            await h.settle()

        assert provider.in_flight[SLOW] == SENDS_PER_TENANT  # the rest wait their turn
        assert [s.key.tenant for s in provider.sends] == [OTHER]  # not held up by SLOW

        provider.release.set()
        await h.run_until_idle()
        assert provider.most[SLOW] == SENDS_PER_TENANT
        assert len(provider.sends) == SENDS_PER_TENANT + 9  # every reply went, once
    finally:
        provider.release.set()
        await h.close()
