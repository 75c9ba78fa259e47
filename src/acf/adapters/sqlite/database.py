"""SqliteDatabase: the one connection to an acf SQLite file, owned by one thread.

Every read and write is a function run on that thread. Writes queued while the thread is
busy are applied together in one transaction (group commit, ``acf.adapters.sql.group_commit``:
many concurrent messages share one fsync), each inside its own SAVEPOINT so a failing unit
rolls back alone. No caller learns a result before the batch's COMMIT has returned, so an
acknowledged write is on disk at the stated durability:

- ``Durability.FULL`` (default): ``synchronous=FULL``; a commit survives power loss.
- ``Durability.NORMAL``: ``synchronous=NORMAL`` in WAL; a commit survives a process crash,
  but the last transactions before a power loss or OS crash may be lost.

A second process (or a second open in this one) on the same file is refused: an exclusive
``flock`` on ``<file>.lock`` is held for the database's lifetime.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from acf.adapters.sql.database import SQLITE, Dialect, SqlConnection
from acf.adapters.sql.group_commit import Job, JobQueue, Outcome, in_savepoints
from acf.domain.errors import AcfError

T = TypeVar("T")

MAX_BATCH = 512


class _Connection(sqlite3.Connection):
    dialect = SQLITE


def _identity(value: int) -> int:
    return value


class Durability(StrEnum):
    FULL = "full"
    NORMAL = "normal"


class DatabaseInUse(AcfError):
    """Another process already has this database file open."""


class _SqliteTransaction:
    """The database's connection running its transactions (``SavepointTransaction``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def begin(self, tenant: str | None) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def call(self, job: Job) -> Any:
        return job.fn(self._conn)

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def savepoint(self) -> None:
        self._conn.execute("SAVEPOINT unit")

    def release(self) -> None:
        self._conn.execute("RELEASE unit")

    def rollback_to_savepoint(self) -> None:
        self._conn.execute("ROLLBACK TO unit")
        self._conn.execute("RELEASE unit")


def lock_database(path: Path) -> int:
    """Take the exclusive lock of the database at ``path``; returns the lock's descriptor.

    Raises ``DatabaseInUse`` naming the holder's pid when another holder has it. Anything
    that opens or migrates an acf SQLite file takes this lock first.
    """
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        who = "this process" if holder == str(os.getpid()) else "another process"
        raise DatabaseInUse(
            f"database {path} is already open in {who} (pid {holder}); "
            "stop that process or use another data directory"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def unlock_database(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


class SqliteDatabase:
    """Owns the file lock, the connection and the thread that runs every statement."""

    def __init__(self, path: Path, durability: Durability = Durability.FULL) -> None:
        self.path = path
        self.durability = durability
        self._jobs = JobQueue(MAX_BATCH)
        self._lock_fd: int | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._alive = False

    def open(self) -> None:
        """Lock the file, connect and start the thread (blocking; call once)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock_database(self.path)
        ready: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"acf-sqlite:{self.path.name}", daemon=True
        )
        self._thread.start()
        error = ready.get()
        if error is not None:
            self._release_lock()
            raise error

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        # The store's clock is the caller's here (one process): acf_now(x) = x.
        conn.create_function("acf_now", 1, _identity, deterministic=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.durability.value.upper()}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    dialect: Dialect = SQLITE

    async def read(self, tenant: str | None, fn: Callable[[SqlConnection], T]) -> T:
        """Run ``fn`` on the database thread and return its result (one file, one
        process: the tenant scoping is in the adapters' SQL)."""
        return await self._submit(fn, writes=False)

    async def write(self, tenant: str | None, fn: Callable[[SqlConnection], T]) -> T:
        """Run ``fn`` atomically (its own savepoint) and return once it is committed."""
        return await self._submit(fn, writes=True)

    async def write_alone(self, tenant: str | None, fn: Callable[[SqlConnection], T]) -> T:
        """As ``write``: one writer holds the whole file for each batch, so a job alone
        would hold no fewer locks."""
        return await self._submit(fn, writes=True)

    async def _submit(self, fn: Callable[[SqlConnection], T], writes: bool) -> T:
        if self._closed or not self._alive:
            raise RuntimeError(f"database {self.path} is not open")
        result: T = await self._jobs.submit(None, fn, writes=writes)
        return result

    def _run(self, ready: queue.SimpleQueue[BaseException | None]) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # reported to open()
            ready.put(exc)
            return
        self._alive = True
        ready.put(None)
        tx = _SqliteTransaction(conn)

        def run(batch: list[Job]) -> list[Outcome]:
            return in_savepoints(tx, batch)

        try:
            self._jobs.serve(run)
        finally:
            self._alive = False
            conn.close()
            self._jobs.fail_queued(RuntimeError(f"database {self.path} is closed"))

    @property
    def submitted(self) -> int:
        """Jobs handed to the thread (for quiescence checks)."""
        return self._jobs.submitted

    @property
    def finished(self) -> int:
        """Jobs the thread has answered, or skipped because their caller was gone."""
        return self._jobs.finished

    @property
    def idle(self) -> bool:
        """No job is queued or running."""
        return self._jobs.finished >= self._jobs.submitted

    def abandon(self) -> None:
        """Refuse every new job at once, as if the process had died; call ``close`` after.

        Jobs already queued may still commit, as in-flight ones would have. For fault
        injection (the scenario harness); never needed in production.
        """
        if not self._closed:
            self._closed = True
            if self._thread is not None:
                self._jobs.stop()

    async def close(self) -> None:
        """Finish queued work, stop the thread and release the file lock."""
        if not self._closed:
            self._closed = True
            if self._thread is not None:
                self._jobs.stop()
        try:
            if self._thread is not None:
                await asyncio.to_thread(self._thread.join)
        finally:
            if self._thread is None or not self._thread.is_alive():
                self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            unlock_database(self._lock_fd)
            self._lock_fd = None
