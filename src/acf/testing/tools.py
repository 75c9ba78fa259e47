"""Scripted tool backends for the harness: they count every call, can be slow or fail."""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from acf.domain.tools import SideEffectPolicy, ToolSpec
from acf.ports.clock import Clock
from acf.ports.tool_backend import Reconciled, Tool, ToolCall
from acf.ports.tool_registry import ToolRegistry
from acf.testing.pipeline import Tally


@dataclass(frozen=True, slots=True)
class ToolBackend:
    spec: ToolSpec
    delay_ms: int = 50
    """How long the backend takes (past ``spec.timeout_ms``: a timeout)."""
    fails: bool = False
    """The backend refuses every call (a definite failure)."""
    reconcile: str | None = None
    """What its reconcile hook answers about an unknown outcome: "done" (it looks the call
    up: done if the backend counted it), "unknown"; ``None``: no hook."""


def registry(backends: Iterable[ToolBackend], clock: Clock, tally: Tally) -> ToolRegistry:
    tools = ToolRegistry()
    for backend in backends:
        hook = None if backend.reconcile is None else _reconcile(backend, tally)
        tools.add(Tool(backend.spec, _handler(backend, clock, tally), hook))
    return tools


def _handler(backend: ToolBackend, clock: Clock, tally: Tally) -> Any:
    async def handle(call: ToolCall) -> Any:
        await clock.sleep(backend.delay_ms / 1000)
        if backend.fails:
            raise RuntimeError(f"{backend.spec.name}: the backend refused the call")
        # Counted per idempotency key, as a real backend that deduplicates would see them.
        key = f"{backend.spec.name}:{call.idempotency_key}"
        tally.backend_calls[key] += 1
        if backend.spec.policy not in (SideEffectPolicy.PURE, SideEffectPolicy.IDEMPOTENT):
            tally.tool_runs[key] += 1
        await asyncio.sleep(0)
        return {"done": backend.spec.name, "args": dict(call.args)}

    return handle


def _reconcile(backend: ToolBackend, tally: Tally) -> Any:
    async def reconcile(call: ToolCall) -> Reconciled:
        if backend.reconcile != "done":
            return Reconciled(None)
        key = f"{backend.spec.name}:{call.idempotency_key}"
        done = tally.backend_calls[key] > 0
        return Reconciled(done, {"done": backend.spec.name, "reconciled": True} if done else None)

    return reconcile
