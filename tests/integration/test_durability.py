"""Crash durability and single-owner locking of the embedded SQLite backend, with real processes.

The children run a small script (``sys.executable -c``) and talk to the test through
stdout lines; every read has a deadline and every child is killed in ``finally``.
"""

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from acf.adapters.channels.web import client_message_id_of
from acf.adapters.sqlite import DatabaseInUse, Durability
from acf.bootstrap import Embedded, open_embedded

TENANT = "t1"
AGENTS = {TENANT: ["support"]}
LINE_TIMEOUT_S = 30
EXIT_TIMEOUT_S = 10

# argv: data_dir durability. Accepts one message, acknowledges it, then waits to be killed.
ACCEPT_AND_HANG = """
import asyncio, sys
from pathlib import Path

from acf.adapters.channels.web import parse_web_message
from acf.adapters.sqlite import Durability
from acf.bootstrap import open_embedded


async def main() -> None:
    embedded = await open_embedded(
        Path(sys.argv[1]), {"t1": ["support"]}, durability=Durability(sys.argv[2])
    )
    message = parse_web_message(
        "t1",
        {"agent": "support", "customer": "c1", "client_message_id": "m-1", "text": "hello"},
    )
    accepted = await embedded.ingress.accept(message)
    print(f"ACK {accepted.message_id} {accepted.seq}", flush=True)
    while True:
        await asyncio.sleep(3600)


asyncio.run(main())
"""

# argv: data_dir. Opens the embedded store, says so, then waits to be killed.
OPEN_AND_HANG = """
import asyncio, sys
from pathlib import Path

from acf.bootstrap import open_embedded


async def main() -> None:
    await open_embedded(Path(sys.argv[1]), {"t1": ["support"]})
    print("READY", flush=True)
    while True:
        await asyncio.sleep(3600)


asyncio.run(main())
"""


class Child:
    """A child Python process whose stdout is read line by line with a deadline."""

    def __init__(self, process: asyncio.subprocess.Process, stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def _stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def expect_line(self, prefix: str) -> str:
        """The first stdout line starting with ``prefix`` (other output, e.g. logs, skipped)."""
        assert self.process.stdout is not None
        seen: list[str] = []
        try:
            async with asyncio.timeout(LINE_TIMEOUT_S):
                while True:
                    raw = await self.process.stdout.readline()
                    if not raw:
                        pytest.fail(
                            f"child exited (rc={await self.process.wait()}) before printing "
                            f"{prefix!r}; stdout: {seen}\nstderr:\n{self._stderr()}"
                        )
                    line = raw.decode(errors="replace").rstrip("\n")
                    if line.startswith(prefix):
                        return line
                    seen.append(line)
        except TimeoutError:
            pytest.fail(
                f"no {prefix!r} line from the child within {LINE_TIMEOUT_S}s; "
                f"stdout: {seen}\nstderr:\n{self._stderr()}"
            )

    async def kill(self) -> int:
        """SIGKILL the child and reap it; returns its exit status."""
        if self.process.returncode is None:
            self.process.kill()
        async with asyncio.timeout(EXIT_TIMEOUT_S):
            await self.process.communicate()  # drains stdout, so the pipe is closed too
        assert self.process.returncode is not None
        return self.process.returncode


@asynccontextmanager
async def child(script: str, *args: str, stderr_path: Path) -> AsyncIterator[Child]:
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    running = Child(process, stderr_path)
    try:
        yield running
    finally:
        await running.kill()


@pytest.mark.parametrize("durability", [Durability.FULL, Durability.NORMAL])
async def test_acknowledged_message_survives_sigkill(
    tmp_path: Path, durability: Durability
) -> None:
    data_dir = tmp_path / "data"
    async with child(
        ACCEPT_AND_HANG, str(data_dir), durability.value, stderr_path=tmp_path / "stderr"
    ) as writer:
        _, message_id, seq = (await writer.expect_line("ACK ")).split()
        # SIGKILL the instant the acknowledgement is out: nothing gets a chance to flush later.
        assert await writer.kill() == -signal.SIGKILL

    embedded = await open_embedded(data_dir, AGENTS, durability=durability)
    try:
        message = await embedded.store.messages.get(TENANT, message_id)
        assert message is not None, "an acknowledged message was lost by a process crash"
        assert message.seq == int(seq) == 1
        assert message.text == "hello"
        assert client_message_id_of(message.provider_message_id) == "m-1"
        session = await embedded.store.sessions.get(TENANT, message.session_id)
        assert session is not None
        assert session.last_seq == 1
    finally:
        await embedded.close()


async def test_second_process_is_refused_while_the_first_holds_the_database(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    async with child(OPEN_AND_HANG, str(data_dir), stderr_path=tmp_path / "stderr") as holder:
        await holder.expect_line("READY")
        with pytest.raises(DatabaseInUse) as refused:
            await open_embedded(data_dir, AGENTS)
        assert f"pid {holder.pid}" in str(refused.value)
        await holder.kill()

    # The kernel dropped the dead holder's lock: the database opens normally now.
    embedded = await open_embedded(data_dir, AGENTS)
    await embedded.close()


@asynccontextmanager
async def opened(data_dir: Path) -> AsyncIterator[Embedded]:
    embedded = await open_embedded(data_dir, AGENTS)
    try:
        yield embedded
    finally:
        await embedded.close()


async def test_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with opened(data_dir):
        with pytest.raises(DatabaseInUse) as refused:
            await open_embedded(data_dir, AGENTS)
        assert f"pid {os.getpid()}" in str(refused.value)

    # close() released the lock.
    async with opened(data_dir) as embedded:
        await embedded.store.ping()
