"""Checkpoints: named instants of the runtime where the scenario harness injects faults."""

from enum import StrEnum
from typing import Protocol, runtime_checkable

from acf.domain.ids import SessionId, TenantId


class Phase(StrEnum):
    WINDOW_OPENED = "window_opened"
    """The turn exists (ACCUMULATING) and its close timer is stored."""
    RUN_STARTED = "run_started"
    """The turn is RUNNING and the attempt recorded; the pipeline has not started."""
    PIPELINE_RUNNING = "pipeline_running"
    """Inside the pipeline (the harness's scripted pipeline reports it)."""
    TOOL_RETURNED = "tool_returned"
    """A tool call returned; its outcome is not in the ledger yet."""
    PIPELINE_FINISHED = "pipeline_finished"
    """The pipeline returned; nothing of its result is committed."""
    TYPING_HOLD = "typing_hold"
    """The pipeline returned and its reply is held while the customer types; nothing of
    its result is committed."""
    COMMITTED = "committed"
    """The turn is committed; its replies are in the outbox, none sent."""
    SEND_ACCEPTED = "send_accepted"
    """The provider accepted an outbox row; the acceptance is not recorded yet."""
    DELIVERED = "delivered"
    """The acceptance of an outbox row is recorded."""


@runtime_checkable
class Checkpoints(Protocol):
    async def reached(self, phase: Phase, tenant: TenantId, session_id: SessionId) -> None: ...


class NoCheckpoints:
    async def reached(self, phase: Phase, tenant: TenantId, session_id: SessionId) -> None:
        return None
