"""Wake-ups across processes on real servers (DESIGN §10): PostgreSQL LISTEN/NOTIFY, and
Redis pub/sub falling back to it. Each ``PgWakeUps``/``RedisWakeUps`` instance plays one
process; every test has its own channel (and its own redis-server), so tests running
concurrently on the shared PostgreSQL do not see each other's wake-ups."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import psycopg
import pytest

from acf.adapters.postgres.wakeup import PgWakeUps, libpq_conninfo
from acf.adapters.redis.client import fail_fast_client
from acf.adapters.redis.wakeup import RedisWakeUps
from acf.ports.wakeup import Subscription, WakeUp, WakeUps
from tests.integration.redis_server import RedisServer, private_redis
from tests.integration.services import postgres_admin_dsn, require_postgres

pytestmark = pytest.mark.postgres

WAIT_S = 5.0
TENANT = "acme"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def next_wake(sub: Subscription) -> WakeUp:
    return await asyncio.wait_for(anext(sub), WAIT_S)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it answers True (bounded: fails after WAIT_S)."""
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"timed out waiting until {what}")


async def backend_pids(application_name: str, listening: bool = False) -> list[int]:
    query = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
    if listening:
        query += " AND state = 'idle' AND query LIKE 'LISTEN %%'"
    async with await psycopg.AsyncConnection.connect(postgres_admin_dsn()) as conn:
        rows = await (await conn.execute(query, (application_name,))).fetchall()
    return [row[0] for row in rows]


async def terminate(pid: int) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_admin_dsn()) as conn:
        await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


class Processes:
    """PgWakeUps instances on one channel, each as if in its own process; closed at the end."""

    def __init__(self) -> None:
        self.channel = unique("acf_wakeup")
        self.opened: list[PgWakeUps] = []

    def app(self, name: str) -> str:
        """The application_name prefix of process ``name``'s connections."""
        return f"{self.channel}-{name}"

    def pg(self, name: str) -> PgWakeUps:
        wakeups = PgWakeUps(
            postgres_admin_dsn(),
            channel=self.channel,
            application_name=self.app(name),
            max_backoff_s=0.2,
        )
        self.opened.append(wakeups)
        return wakeups

    async def close(self) -> None:
        for wakeups in self.opened:
            await wakeups.close()


@pytest.fixture
async def processes() -> AsyncIterator[Processes]:
    require_postgres()
    opened = Processes()
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_notify_in_one_process_wakes_a_subscriber_in_another(
    processes: Processes,
) -> None:
    api, worker = processes.pg("api"), processes.pg("worker")
    sub = worker.subscribe()
    assert await worker.start()

    await api.notify(TENANT, "s1")

    assert await next_wake(sub) == WakeUp(TENANT, "s1")
    assert isinstance(worker, WakeUps)


async def test_repeats_for_one_session_are_coalesced(processes: Processes) -> None:
    api, worker = processes.pg("api"), processes.pg("worker")
    sub, witness = worker.subscribe(), worker.subscribe()
    assert await worker.start()

    for session in ("s1", "s1", "s1", "s2"):
        await api.notify(TENANT, session)
    # The listener offers each notification to every subscription in turn, in order: once
    # the witness saw s2, ``sub`` was offered all four.
    while (await next_wake(witness)).session_id != "s2":
        pass

    assert [await next_wake(sub), await next_wake(sub)] == [
        WakeUp(TENANT, "s1"),
        WakeUp(TENANT, "s2"),
    ]


async def test_a_closed_subscription_receives_nothing(processes: Processes) -> None:
    api, worker = processes.pg("api"), processes.pg("worker")
    closed, open_ = worker.subscribe(), worker.subscribe()
    assert await worker.start()
    closed.close()

    await api.notify(TENANT, "s1")

    assert await next_wake(open_) == WakeUp(TENANT, "s1")
    # Delivery to every subscription is one synchronous step: had ``closed`` been offered
    # s1, it would already be queued, and this would not time out.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(closed), 0.05)


async def test_the_listener_reconnects_after_its_backend_is_killed(
    processes: Processes,
) -> None:
    api, worker = processes.pg("api"), processes.pg("worker")
    sub = worker.subscribe()
    assert await worker.start()
    await api.notify(TENANT, "before")
    assert await next_wake(sub) == WakeUp(TENANT, "before")
    name = f"{processes.app('worker')}-listener"
    [old] = await backend_pids(name)

    await terminate(old)

    async def listening_again() -> bool:
        return any(pid != old for pid in await backend_pids(name, listening=True))

    await eventually(listening_again, "the listener LISTENs on a new connection")
    await api.notify(TENANT, "after")
    assert await next_wake(sub) == WakeUp(TENANT, "after")


async def test_a_notify_after_its_connection_was_killed_still_arrives(
    processes: Processes,
) -> None:
    api, worker = processes.pg("api"), processes.pg("worker")
    sub = worker.subscribe()
    assert await worker.start()
    await api.notify(TENANT, "before")
    assert await next_wake(sub) == WakeUp(TENANT, "before")
    [notifier] = await backend_pids(f"{processes.app('api')}-notifier")

    await terminate(notifier)
    await api.notify(TENANT, "after")  # finds its connection broken: a new one, at once

    assert await next_wake(sub) == WakeUp(TENANT, "after")


async def test_notify_never_raises_when_postgres_is_unreachable() -> None:
    unreachable = PgWakeUps("postgresql://postgres@127.0.0.1:1/test", notify_timeout_s=1.0)
    try:
        await asyncio.wait_for(unreachable.notify(TENANT, "s1"), WAIT_S)
        assert not await unreachable.start(wait_s=0.1)
    finally:
        await unreachable.close()


# Redis, with PostgreSQL as the fallback.


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    async for server in private_redis():
        yield server


class RedisProcess:
    def __init__(self, redis: RedisWakeUps, fallback: PgWakeUps) -> None:
        self.redis, self.fallback = redis, fallback


class RedisProcesses:
    """RedisWakeUps on one Redis channel, each over its own PgWakeUps fallback."""

    def __init__(self, processes: Processes, server: RedisServer) -> None:
        self.channel = unique("acf:wakeup")
        self._processes, self._server = processes, server
        self.opened: list[RedisWakeUps] = []

    def open(self, name: str) -> RedisProcess:
        fallback = self._processes.pg(name)
        redis = RedisWakeUps(
            self._server.url,
            fallback,
            channel=self.channel,
            retry_after_s=0.05,
            max_backoff_s=0.2,
        )
        self.opened.append(redis)
        return RedisProcess(redis, fallback)


@pytest.fixture
async def redis_processes(
    processes: Processes, redis_server: RedisServer
) -> AsyncIterator[RedisProcesses]:
    opened = RedisProcesses(processes, redis_server)
    try:
        yield opened
    finally:
        for redis in opened.opened:  # before their fallbacks, closed by ``processes``
            await redis.close()


async def test_redis_carries_wake_ups_survives_its_loss_and_comes_back(
    redis_processes: RedisProcesses, redis_server: RedisServer
) -> None:
    api, worker = redis_processes.open("api"), redis_processes.open("worker")
    sub = worker.redis.subscribe()
    assert await worker.fallback.start()
    assert await worker.redis.start()
    channel = redis_processes.channel

    await api.redis.notify(TENANT, "via-redis")
    assert await next_wake(sub) == WakeUp(TENANT, "via-redis")

    await redis_server.stop()
    await api.redis.notify(TENANT, "during-outage")  # through PostgreSQL
    assert await next_wake(sub) == WakeUp(TENANT, "during-outage")

    await redis_server.start()
    assert await worker.redis.start()  # the subscriber is back on Redis
    probe = fail_fast_client(redis_server.url)
    listener = probe.pubsub()
    try:
        # The worker receives from Redis itself (nothing goes through PostgreSQL here).
        await probe.publish(channel, '{"t":"acme","s":"raw-redis"}')
        assert await next_wake(sub) == WakeUp(TENANT, "raw-redis")

        # The API publishes on Redis again once its retry delay is over.
        await listener.subscribe(channel)

        async def api_publishes_on_redis() -> bool:
            await api.redis.notify(TENANT, "back")
            message = await listener.get_message(ignore_subscribe_messages=True, timeout=0.1)
            return message is not None and "back" in message["data"]

        await eventually(api_publishes_on_redis, "the API publishes on Redis again")
        assert await next_wake(sub) == WakeUp(TENANT, "back")
    finally:
        await listener.aclose()  # type: ignore[no-untyped-call]
        await probe.aclose()


async def test_notify_with_redis_never_reachable_goes_through_the_fallback(
    processes: Processes,
) -> None:
    api_fallback, worker = processes.pg("api"), processes.pg("worker")
    sub = worker.subscribe()
    assert await worker.start()
    dead = RedisWakeUps("redis://127.0.0.1:1/0", api_fallback)
    try:
        await asyncio.wait_for(dead.notify(TENANT, "s1"), WAIT_S)
        await asyncio.wait_for(dead.notify(TENANT, "s2"), WAIT_S)  # straight to the fallback
    finally:
        await dead.close()

    assert [await next_wake(sub), await next_wake(sub)] == [
        WakeUp(TENANT, "s1"),
        WakeUp(TENANT, "s2"),
    ]


def test_a_sqlalchemy_url_is_taken_as_a_libpq_one() -> None:
    assert libpq_conninfo("postgresql+psycopg://u:p@h:5432/db?sslmode=disable") == (
        "postgresql://u:p@h:5432/db?sslmode=disable"
    )
    assert libpq_conninfo("host=h dbname=db") == "host=h dbname=db"
