"""The tool gateway (DESIGN §8): every action a pipeline takes goes through here.

allowlist → argument validation → idempotency key → (irreversible gate) → ledger lookup →
write-ahead ``started`` row, fenced → run, with the tool's timeout → outcome row → events.
The whole execution is shielded: a supersede waits for it and its ledger row.

A tool whose spec ``requires_confirmation`` runs only as a confirmed action
(``call_confirmed``, after the customer's yes to ``request_confirmation``): ``call``
refuses it, audited, whatever the pipeline or its model asked for.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import jsonschema

from acf.domain.events import EventKind, FabricEvent
from acf.domain.ids import new_id
from acf.domain.tools import (
    LedgerStatus,
    Next,
    Outcome,
    SideEffectPolicy,
    ToolResult,
    ToolSpec,
    idempotency_key,
    next_step,
)
from acf.ports.checkpoints import Phase
from acf.ports.event_store import AppendEvent
from acf.ports.lease import CheckFence
from acf.ports.ledger import BeginExecution, FinishExecution, LedgerEntry
from acf.ports.tool_backend import OutcomeUnknown, Reconciled, Tool, ToolCall
from acf.ports.tool_registry import ToolRegistry
from acf.ports.unit_of_work import WriteOp
from acf.service import turn_ending_units

if TYPE_CHECKING:  # the context builds a gateway over its running turn
    from acf.service.running_turn import RunningTurn


IDEMPOTENT_ATTEMPTS = 3
"""Calls of a PURE or IDEMPOTENT tool that timed out, with the same key, before it fails."""
RETRY_BACKOFF_MS = 200


class ToolTimeout(OutcomeUnknown):
    """The tool did not answer within its timeout: its outcome is unknown."""


class ToolGateway:
    """Bound to one running turn (its frame) and the agent's registry."""

    def __init__(
        self,
        frame: "RunningTurn",
        registry: ToolRegistry,
        customer: str,
        gate: Callable[[], Awaitable[None]],
        shield: Callable[[Awaitable[ToolResult]], Awaitable[ToolResult]],
    ) -> None:
        self._frame = frame
        self._registry = registry
        self._customer = customer
        self._gate = gate
        self._shield = shield

    async def call(self, name: str, args: Mapping[str, Any]) -> ToolResult:
        tool = self._registry.get(name)
        if tool is not None and tool.spec.requires_confirmation:
            await self._audit(EventKind.TOOL_REFUSED, tool=name, reason="needs confirmation")
            return ToolResult(
                Outcome.REFUSED,
                error=f"tool {name!r} needs the customer's confirmation: use request_confirmation",
            )
        checked = await self.prepare(name, args)
        if isinstance(checked, ToolResult):
            return checked
        return await self.perform(checked[0], checked[1], args)

    async def prepare(self, name: str, args: Mapping[str, Any]) -> tuple[Tool, str] | ToolResult:
        """Allowlist, arguments and key: the tool and its key, or why it cannot run."""
        tool = self._registry.get(name)
        if tool is None:
            await self._audit(EventKind.TOOL_REFUSED, tool=name, reason="not allowed")
            return ToolResult(Outcome.REFUSED, error=f"tool {name!r} is not allowed here")
        spec = tool.spec
        problems = sorted(
            jsonschema.Draft202012Validator(dict(spec.args_schema)).iter_errors(dict(args)),
            key=lambda e: list(e.path),
        )
        if problems:
            where = "/".join(str(p) for p in problems[0].path) or "(arguments)"
            return ToolResult(Outcome.INVALID, error=f"{where}: {problems[0].message}")
        t = self._frame.turn
        try:
            key = idempotency_key(spec, t.tenant, t.session_id, t.group_id, args)
        except ValueError as exc:
            return ToolResult(Outcome.INVALID, error=str(exc))
        return tool, key

    async def call_confirmed(self, name: str, args: Mapping[str, Any], key: str) -> ToolResult:
        """Run a confirmed action under the key fixed when the confirmation was requested;
        its arguments are checked again (the allowlist and the schema may have changed)."""
        checked = await self.prepare(name, args)
        if isinstance(checked, ToolResult):
            return checked
        return await self.perform(checked[0], key, args)

    async def perform(self, tool: Tool, key: str, args: Mapping[str, Any]) -> ToolResult:
        if tool.spec.policy is SideEffectPolicy.IRREVERSIBLE:
            await self._gate()  # may raise PendingInput: the pipeline decides
        return await self._shield(self._execute(tool, key, args))

    async def _execute(self, tool: Tool, key: str, args: Mapping[str, Any]) -> ToolResult:
        f, spec = self._frame, tool.spec
        now = f.clock.now_ms()
        ttl = spec.ttl_ms
        entry = LedgerEntry(
            tenant=f.turn.tenant,
            execution_id=new_id(),
            idempotency_key=key,
            tool=spec.name,
            policy=spec.policy,
            status=LedgerStatus.STARTED,
            session_id=f.turn.session_id,
            group_id=f.turn.group_id,
            turn_id=f.turn.turn_id,
            customer=self._customer,
            args=dict(args),
            started_at_ms=now,
            expires_at_ms=None if ttl is None else now + ttl,
        )
        begin = BeginExecution(entry)
        begun = (await f.commit([self._fence(now), begin])).get(begin)
        if not begun.started:
            earlier = begun.entry
            step = next_step(spec.policy, earlier.status)
            if step is Next.RETURN_RECORDED:
                return ToolResult(
                    Outcome.ALREADY_DONE,
                    earlier.result,
                    done_at_ms=earlier.finished_at_ms,
                    execution_id=earlier.execution_id,
                )
            if step is Next.IN_DOUBT:
                return await self._reconcile(tool, earlier, key, args)
            entry = earlier  # IDEMPOTENT / PURE started before: run again, same key
        # The event names the ledger row that runs: on a re-run, the earlier one.
        started = self._event(EventKind.TOOL_EXECUTION_STARTED, now, spec, entry.execution_id)
        await f.commit([self._fence(now), started])
        retryable = spec.policy in (SideEffectPolicy.PURE, SideEffectPolicy.IDEMPOTENT)
        for attempt in range(1, (IDEMPOTENT_ATTEMPTS if retryable else 1) + 1):
            try:
                value = await self._run(tool, ToolCall(args, key, entry.execution_id, attempt))
            except OutcomeUnknown:
                if not retryable:
                    return await self._in_doubt(spec, entry)  # it may have happened
                if attempt == IDEMPOTENT_ATTEMPTS:
                    return await self._finish(spec, entry, LedgerStatus.FAILED, error="timeout")
                await f.clock.sleep(RETRY_BACKOFF_MS * 2 ** (attempt - 1) / 1000)
                continue  # the same key: the backend deduplicates
            except Exception as exc:  # the tool said no: a definite failure
                return await self._finish(spec, entry, LedgerStatus.FAILED, error=repr(exc))
            await f.checkpoints.reached(Phase.TOOL_RETURNED, f.turn.tenant, f.turn.session_id)
            return await self._finish(spec, entry, LedgerStatus.SUCCEEDED, value=value)
        raise AssertionError("unreachable")

    async def _run(self, tool: Tool, request: ToolCall) -> Any:
        clock = self._frame.clock
        loop = asyncio.get_running_loop()
        call = loop.create_task(_await(tool.handler(request)))
        limit = loop.create_task(clock.sleep(tool.spec.timeout_ms / 1000))
        try:
            await asyncio.wait({call, limit}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            limit.cancel()
        if not call.done():
            call.cancel()
            raise ToolTimeout(tool.spec.name)
        return call.result()

    async def _finish(
        self,
        spec: ToolSpec,
        entry: LedgerEntry,
        status: LedgerStatus,
        value: Any = None,
        error: str | None = None,
    ) -> ToolResult:
        f = self._frame
        now = f.clock.now_ms()
        kind = (
            EventKind.TOOL_EXECUTION_COMPLETED
            if status is LedgerStatus.SUCCEEDED
            else EventKind.TOOL_EXECUTION_FAILED
        )
        ops: list[WriteOp[Any]] = [
            self._fence(now),
            FinishExecution(entry.execution_id, status, now, result=value, error=error),
            self._event(
                kind,
                now,
                spec,
                entry.execution_id,
                error=error,
                duration_ms=now - entry.started_at_ms,
            ),
        ]
        if status is LedgerStatus.SUCCEEDED and spec.policy is not SideEffectPolicy.PURE:
            ops.append(
                self._event(EventKind.TOOL_SIDE_EFFECT_COMPLETED, now, spec, entry.execution_id)
            )
        await f.commit(ops)
        outcome = Outcome.OK if status is LedgerStatus.SUCCEEDED else Outcome.FAILED
        return ToolResult(outcome, value, error, now, entry.execution_id)

    async def _reconcile(
        self, tool: Tool, entry: LedgerEntry, key: str, args: Mapping[str, Any]
    ) -> ToolResult:
        """Ask the backend what became of an unknown outcome; escalate if it cannot say."""
        spec = tool.spec
        answer: Reconciled | None = None
        if tool.reconcile is not None:
            try:
                answer = await tool.reconcile(ToolCall(args, key, entry.execution_id, 0))
            except Exception:  # the reconcile hook failed: still unknown
                answer = None
        if answer is None or answer.happened is None:
            return await self._in_doubt(spec, entry)
        if answer.happened:
            done = await self._finish(spec, entry, LedgerStatus.SUCCEEDED, value=answer.result)
            if entry.group_id == self._frame.turn.group_id:
                return done  # this very request did it (before a crash): it succeeded
            return replace(done, outcome=Outcome.ALREADY_DONE)
        await self._finish(spec, entry, LedgerStatus.FAILED, error="reconciled: not done")
        return await self._execute(tool, key, args)  # the key is free again: run it now

    async def compensate(self, execution_id: str) -> ToolResult:
        """Undo a succeeded COMPENSATABLE execution of this session with its compensation
        tool (same arguments, its own derived key), then mark it compensated."""
        f = self._frame
        entry = await f.store.ledger.get(f.turn.tenant, execution_id)
        original = None if entry is None else self._registry.get(entry.tool)
        if (
            entry is None
            or original is None
            or entry.session_id != f.turn.session_id
            or entry.status is not LedgerStatus.SUCCEEDED
            or original.spec.compensation is None
        ):
            return ToolResult(Outcome.REFUSED, error=f"{execution_id}: nothing to compensate")
        undo = self._registry.get(original.spec.compensation)
        if undo is None:
            return ToolResult(
                Outcome.REFUSED, error=f"compensation {original.spec.compensation!r} not allowed"
            )
        result = await self.perform(undo, f"{entry.idempotency_key}:compensate", entry.args)
        if result.ok:
            now = f.clock.now_ms()
            await f.commit(
                [
                    self._fence(now),
                    FinishExecution(entry.execution_id, LedgerStatus.COMPENSATED, now),
                    self._event(EventKind.TOOL_COMPENSATED, now, original.spec, entry.execution_id),
                ]
            )
        return result

    async def _in_doubt(self, spec: ToolSpec, entry: LedgerEntry) -> ToolResult:
        f = self._frame
        now = f.clock.now_ms()
        ops: list[WriteOp[Any]] = [self._fence(now)]
        if entry.status is LedgerStatus.STARTED:
            ops.append(FinishExecution(entry.execution_id, LedgerStatus.IN_DOUBT, now))
        ops.append(self._event(EventKind.TOOL_IN_DOUBT, now, spec, entry.execution_id))
        # Escalated: a person must find out what happened (the session shows it).
        reason = f"tool {spec.name} in doubt (execution {entry.execution_id})"
        ops += turn_ending_units.flag_for_person(f.turn, reason, now, f.versions)
        await f.commit(ops)
        return ToolResult(
            Outcome.IN_DOUBT,
            error=f"{spec.name}: the outcome of an earlier call is unknown; a person will check",
            execution_id=entry.execution_id,
        )

    def _fence(self, now: int) -> CheckFence:
        return CheckFence(self._frame.turn.session_id, self._frame.keeper.fence, now)

    def _event(
        self, kind: EventKind, at_ms: int, spec: ToolSpec, execution_id: str, **data: Any
    ) -> AppendEvent:
        body = {"tool": spec.name, "execution_id": execution_id, "policy": spec.policy.value}
        if spec.status_text and kind is EventKind.TOOL_EXECUTION_STARTED:
            body["status_text"] = spec.status_text
        body.update({k: v for k, v in data.items() if v is not None})
        return AppendEvent(FabricEvent(kind, at_ms, self._frame.correlation, body))

    async def _audit(self, kind: EventKind, **data: Any) -> None:
        f = self._frame
        now = f.clock.now_ms()
        await f.commit([self._fence(now), AppendEvent(FabricEvent(kind, now, f.correlation, data))])


async def _await(action: Awaitable[Any]) -> Any:
    return await action
