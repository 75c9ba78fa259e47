"""The preview's model: recorded completions answered again when the request is identical.

The LLM pipeline memoises each completion as a turn step (``ctx.step``) keyed by its turn
group, the step's name and a fingerprint of its exact request; the memo rows are kept
after the turn commits (nothing prunes them), so a recorded session's completions are
still in the store. A replayed request is looked up under the recorded sessions' groups
with the same fingerprint: found, and answered by a model the version still configures,
the recorded completion is the answer. Otherwise the request goes to a live model (the
version's pipeline fields with ``--llm-base-url``), or, without one, is counted as a miss
and fails (the preview then refuses to report, naming the sessions: a diff made of
fallback replies would say nothing true).

The router's classifier is memoised by its verdict, not its completion: a recorded verdict
for the identical request answers again (its model is not part of the request: a version
that changes only the classifier's model reuses the recorded routes).
"""

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acf.config.pipelines import NO_ROUTE
from acf.domain.ids import GroupId, TenantId
from acf.pipelines.llm.completion import Completer, Completion, LlmUnavailable, OnDelta, OnEvent
from acf.pipelines.routing.classify import STEP as CLASSIFY_STEP
from acf.ports.clock import Clock
from acf.ports.step_memo import MemoKey, StepMemo
from acf.service.turn_context import fingerprint

COMPLETION_STEPS = ("llm.completion", "llm.summary")


class InFlight:
    """Model requests being answered: the sandbox's clock waits for them (a lookup in the
    tenant's store or a live model takes real time, which the virtual clock must not
    skip)."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def idle(self) -> bool:
        return self._count == 0

    async def wait(self) -> None:
        await self._idle.wait()

    async def __aenter__(self) -> None:
        self._count += 1
        self._idle.clear()

    async def __aexit__(self, *exc: object) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()


@dataclass(slots=True)
class ModelTally:
    reused: int = 0
    live: int = 0
    misses: list[str] = field(default_factory=list)
    """The start of each request's newest message that found no recorded answer."""


@dataclass(frozen=True, slots=True)
class Recordings:
    """Where the recorded sessions' memoised steps are: the tenant's store and groups."""

    memo: StepMemo
    tenant: TenantId
    groups: Sequence[GroupId]

    async def find(self, names: Sequence[str], request: Mapping[str, Any]) -> Any | None:
        print_ = fingerprint([request])
        for name in names:
            for group in self.groups:
                found, value = await self.memo.recall(self.tenant, MemoKey(group, name, print_))
                if found:
                    return value
        return None


class RecordedModel:
    """Implements ``Completer`` for one agent's model (or its router's classifier)."""

    def __init__(
        self,
        recordings: Recordings,
        models: Sequence[str],
        live: Completer | None,
        inflight: InFlight,
        tally: ModelTally,
        classifier: bool = False,
    ) -> None:
        self._recordings = recordings
        self._models = tuple(models)
        self._live = live
        self._inflight = inflight
        self._tally = tally
        self._classifier = classifier

    async def complete(
        self,
        request: Mapping[str, Any],
        *,
        clock: Clock,
        deadline_ms: int,
        on_delta: OnDelta | None = None,
        on_event: OnEvent | None = None,
    ) -> Completion:
        async with self._inflight:
            recorded = await self._recorded(request)
            if isinstance(recorded, LlmUnavailable):
                self._tally.reused += 1
                raise recorded  # the classifier failed then: it fails again
            if recorded is not None:
                self._tally.reused += 1
                return recorded
            if self._live is None:
                self._tally.misses.append(_newest(request))
                raise LlmUnavailable("no recorded completion for this request (preview)")
            self._tally.live += 1
            return await self._live.complete(
                request, clock=clock, deadline_ms=deadline_ms, on_delta=on_delta, on_event=on_event
            )

    async def _recorded(self, request: Mapping[str, Any]) -> Completion | LlmUnavailable | None:
        if self._classifier:
            verdict = await self._recordings.find([CLASSIFY_STEP], request)
            if not isinstance(verdict, Mapping):
                return None
            if verdict.get("error"):
                return LlmUnavailable(f"recorded: the classifier failed ({verdict['error']})")
            route = verdict.get("route")
            text = route if isinstance(route, str) else NO_ROUTE
            return Completion(model=self._models[0] if self._models else "recorded", text=text)
        raw = await self._recordings.find(COMPLETION_STEPS, request)
        if not isinstance(raw, Mapping):
            return None
        completion = Completion.from_json(raw)
        return completion if completion.model in self._models else None

    async def aclose(self) -> None:
        close = getattr(self._live, "aclose", None)
        if close is not None:
            await close()


def _newest(request: Mapping[str, Any]) -> str:
    messages = request.get("messages") or []
    last = messages[-1] if messages else {}
    content = last.get("content") if isinstance(last, Mapping) else None
    return str(content or "")[:80]
