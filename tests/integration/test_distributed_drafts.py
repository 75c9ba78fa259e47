"""Drafts across processes on real servers (DESIGN §16): PostgreSQL LISTEN/NOTIFY (payloads
under 8 KB: a long draft is split), and Redis pub/sub falling back to it. Each bus instance
plays one process; every test has its own channel (and its own redis-server)."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from acf.adapters.memory.drafts import InProcessDraftBus
from acf.adapters.postgres.drafts import MAX_PAYLOAD_BYTES, PgDraftBus, decode, encode
from acf.adapters.redis.drafts import RedisDraftBus
from acf.bootstrap import read_settings
from acf.bootstrap.distributed import distributed_drafts
from acf.ports.drafts import Draft, DraftBus, DraftSubscription
from tests.integration.redis_server import RedisServer, private_redis
from tests.integration.services import postgres_admin_dsn, require_postgres

pytestmark = pytest.mark.postgres

WAIT_S = 5.0
TENANT = "acme"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def draft(offset: int, text: str, session: str = "s1", turn: str = "t1") -> Draft:
    return Draft(TENANT, session, turn, 1, 3, offset, text, 1_700_000_000_000)


async def received(sub: DraftSubscription, count: int) -> list[Draft]:
    """The next ``count`` drafts (bounded by WAIT_S)."""
    got: list[Draft] = []
    async with asyncio.timeout(WAIT_S):
        while len(got) < count:
            await sub.wait()
            got += sub.drain()
    return got


class Processes:
    def __init__(self) -> None:
        self.channel = unique("acf_drafts")
        self.opened: list[PgDraftBus] = []

    def pg(self, name: str, local: InProcessDraftBus | None = None) -> PgDraftBus:
        bus = PgDraftBus(
            postgres_admin_dsn(),
            local=local,
            channel=self.channel,
            application_name=f"{self.channel}-{name}",
            max_backoff_s=0.2,
        )
        self.opened.append(bus)
        return bus


@pytest.fixture
async def processes() -> AsyncIterator[Processes]:
    require_postgres()
    opened = Processes()
    try:
        yield opened
    finally:
        for bus in opened.opened:
            await bus.close()


async def test_a_draft_published_in_one_process_reaches_anothers_subscriber(
    processes: Processes,
) -> None:
    worker, api = processes.pg("worker"), processes.pg("api")
    assert isinstance(worker, DraftBus)
    sub, elsewhere = api.subscribe(TENANT, "s1"), api.subscribe(TENANT, "s2")
    assert await api.start()

    worker.publish(draft(0, "Hello"))
    worker.publish(draft(5, " wörld 👋"))

    assert await received(sub, 2) == [draft(0, "Hello"), draft(5, " wörld 👋")]
    assert elsewhere.drain() == []


async def test_a_process_gets_its_own_drafts_once(processes: Processes) -> None:
    both = processes.pg("all")  # an ``all`` process: worker and API in one
    sub = both.subscribe(TENANT, "s1")
    assert await both.start()
    witness = processes.pg("witness")
    seen = witness.subscribe(TENANT, "s1")
    assert await witness.start()

    both.publish(draft(0, "a"))
    both.publish(draft(1, "b"))

    assert await received(seen, 2) == [draft(0, "a"), draft(1, "b")]  # both went out
    assert sub.drain() == [draft(0, "a"), draft(1, "b")]  # delivered locally, not again


async def test_a_long_draft_is_split_into_payloads_notify_accepts(processes: Processes) -> None:
    text = "".join(chr(0x4E00 + i % 500) for i in range(6000)) + "é\n\x01" * 100  # ~18 KB
    parts = encode(draft(7, text), "origin", 1)
    assert len(parts) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES for p in parts)

    worker, api = processes.pg("worker"), processes.pg("api")
    sub = api.subscribe(TENANT, "s1")
    assert await api.start()
    worker.publish(draft(7, text))

    got = await received(sub, len(parts))
    assert [d.offset for d in got] == [
        7 + sum(len(d.text) for d in got[:i]) for i in range(len(got))
    ]
    assert "".join(d.text for d in got) == text


def test_a_malformed_payload_is_refused() -> None:
    assert decode("{") is None
    assert decode('{"o":"x"}') is None
    good = encode(draft(0, "hi"), "origin", 1)[0]
    assert decode(good) == ("origin", draft(0, "hi"))
    assert decode(good.replace('"a":1', '"a":"1"')) is None


async def test_publish_never_waits_nor_raises_when_postgres_is_unreachable() -> None:
    unreachable = PgDraftBus("postgresql://postgres@127.0.0.1:1/test", send_timeout_s=0.5)
    try:
        local = unreachable.subscribe(TENANT, "s1")
        unreachable.publish(draft(0, "still shown here"))
        assert local.drain() == [draft(0, "still shown here")]
        assert not await unreachable.start(wait_s=0.1)
    finally:
        await unreachable.close()


# Redis, with PostgreSQL as the fallback.


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async for server in private_redis():
        yield server


async def test_redis_carries_drafts_and_notify_takes_over_during_an_outage(
    processes: Processes, redis_server: RedisServer
) -> None:
    channel = unique("acf:drafts")
    buses: list[RedisDraftBus] = []

    def process(name: str) -> RedisDraftBus:
        local = InProcessDraftBus()
        bus = RedisDraftBus(
            redis_server.url,
            processes.pg(name, local),
            local,
            channel=channel,
            retry_after_s=0.05,
            max_backoff_s=0.2,
        )
        buses.append(bus)
        return bus

    try:
        worker, api = process("worker"), process("api")
        sub = api.subscribe(TENANT, "s1")
        assert await api.start()

        worker.publish(draft(0, "via redis"))
        assert await received(sub, 1) == [draft(0, "via redis")]

        await redis_server.stop()
        worker.publish(draft(9, ", then notify"))  # Redis refuses: NOTIFY carries it
        assert await received(sub, 1) == [draft(9, ", then notify")]
    finally:
        for bus in buses:
            await bus.close()


async def test_the_composition_root_picks_notify_or_redis() -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    plain, closers = distributed_drafts(url, read_settings({"database_url": url}, environ={}))
    assert isinstance(plain, PgDraftBus) and len(closers) == 1
    with_redis = read_settings({"database_url": url, "redis_url": "redis://x:1/0"}, environ={})
    redis, more = distributed_drafts(url, with_redis)
    assert isinstance(redis, RedisDraftBus) and len(more) == 2
    for close in [*closers, *more]:  # nothing was opened: they connect when used
        await close()
