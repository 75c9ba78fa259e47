"""A set of background tasks owned by one runtime, so it can stop (or be dropped) at once."""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

from acf.observability.redaction import error_text

T = TypeVar("T")

log = structlog.get_logger("acf.tasks")

CANCEL_PATIENCE_S = 5.0


class TaskSet:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        if self.closed:
            coro.close()
            raise RuntimeError("the runtime is stopped")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("task.crashed", task=task.get_name(), error=error_text(exc))

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel_all(self, patience_s: float = CANCEL_PATIENCE_S) -> None:
        """Refuse new tasks, cancel every running one and wait until all are done, or
        until ``patience_s`` (real seconds) passed: a task that ignores cancellation is
        left behind, named in the log, rather than hanging the shutdown."""
        self.closed = True
        deadline = asyncio.get_running_loop().time() + patience_s
        while self._tasks:
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                log.error("tasks.ignore_cancellation", tasks=[t.get_name() for t in pending])
                return
            await asyncio.wait(pending, timeout=left)
