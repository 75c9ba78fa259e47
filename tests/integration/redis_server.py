"""A private ``redis-server`` per test, on a free loopback port, never the shared one.

``RedisServer`` can be stopped (killed by its pid, an outage) and started again on the same
port (Redis back). Without the ``redis-server`` binary the calling test skips, unless
``ACF_REQUIRE_SERVICES=1`` (CI), where its absence is a failure.
"""

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import RedisError

from acf.adapters.redis.client import fail_fast_client
from tests.integration.services import services_required

START_TIMEOUT_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, binary: str) -> None:
        self._binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start on ``port`` and return once it answers PING."""
        self._process = await asyncio.create_subprocess_exec(
            *(self._binary, "--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--loglevel", "warning"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(START_TIMEOUT_S):
            while not await self.answers():
                if self._process.returncode is not None:
                    raise RuntimeError(f"redis-server exited with {self._process.returncode}")
                await asyncio.sleep(0.02)

    async def answers(self) -> bool:
        client = fail_fast_client(self.url)
        try:
            return bool(await client.ping())
        except (RedisError, OSError):
            return False
        finally:
            await client.aclose()

    async def stop(self) -> None:
        """Kill it (SIGKILL, by its pid): connections drop as in a crash."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), START_TIMEOUT_S)


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed"
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


async def private_redis() -> AsyncIterator[RedisServer]:
    """Body of a fixture: a started private server, stopped at the end."""
    server = RedisServer(redis_binary())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
