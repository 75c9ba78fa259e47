"""``RouterPipeline``: picks one child pipeline per turn (``pipeline: {kind: router}``,
DESIGN §16, seed 004 Story 4) and runs it.

One run: look up the route an agent session keeps (sticky), ask the classifier when only
it can still decide (``classifier_needed``; ``classify``), decide (``decide``), record the
decision as the progress event ``routing.decision`` before the child starts (with
``classifier_error``, the failure's class name, when the classifier failed), run the child
with a context whose text has the routing command taken off (``RoutedContext``), then mark
its result with the route. While a route falls back because its service is
unavailable, the first fallback reply of the outage in a session starts with the
``degraded_notice`` (remembered in state under ``data.routing`` until the route is usable
again).

Sticky: an ``agent_service`` child's route is taken while the conversation's agent session
for its profile is ACTIVE or AWAITING_USER, or COMPLETED less than ``sticky_s`` ago.
Available: an ``agent_service`` child while its endpoint is usable (circuit not open, last
health check not failing: ``acf.pipelines.agent_service.availability``); any other child
always.

A failed call the child reports carries the route under ``router.route`` in its request, so
replaying its dead letter runs the same route again (``replay``).
"""

import dataclasses
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from acf.config.pipelines import RouterPipelineFields
from acf.domain.agent_sessions import AgentSessionRow, AgentSessionStatus
from acf.domain.errors import InvalidValue
from acf.domain.messages import InboundMessage
from acf.domain.replies import PipelineResult, ReplySegment
from acf.domain.state import combine_patches
from acf.domain.supersede import SupersedeDecision
from acf.pipelines.routing.classify import classifier_of
from acf.pipelines.routing.context import ROUTE_KEY, RoutedContext, without_command
from acf.pipelines.routing.decide import Decision, Reason, RouteRule, classifier_needed, decide
from acf.pipelines.rules import turn_text
from acf.ports.pipeline import ClosablePipeline, Pipeline, SupersedeHook, TurnContext

STATE_KEY = "routing"
"""The router's part of session state: ``data.routing``."""


class EndpointAvailability(Protocol):
    """Whether an agent service's endpoint may be called now."""

    def usable(self, base_url: str, now_ms: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class Service:
    """What routing needs of an ``agent_service`` child: its endpoint and profile."""

    base_url: str
    profile: str


def router_version(fields: RouterPipelineFields, children: Mapping[str, Pipeline]) -> str:
    """A content hash of the routing fields and each child's version."""
    body = {
        "routes": {name: child.version for name, child in sorted(children.items())},
        "routing": fields.model_dump(mode="json", exclude={"routes"}),
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class TurnDecision:
    """A turn's decision, how long it took (µs, the classifier included) and the class
    name of the classifier's failure, if it failed."""

    decision: Decision
    decision_us: int
    classifier_error: str | None = None


def decision_data(
    decision: Decision, decision_us: int, classifier_error: str | None = None
) -> dict[str, Any]:
    """The ``routing.decision`` event's data."""
    data: dict[str, Any] = {"route": decision.route, "reason": decision.reason.value}
    if decision.rule_index is not None:
        data["rule"] = decision.rule_index
    if decision.fallback_from is not None:
        data["fallback_from"] = decision.fallback_from
    if classifier_error is not None:
        data["classifier_error"] = classifier_error
    data["decision_us"] = decision_us
    return data


def routing_state(state: Mapping[str, Any]) -> Mapping[str, Any]:
    data = state.get("data")
    found = data.get(STATE_KEY) if isinstance(data, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def with_notice(segments: Sequence[ReplySegment], notice: str) -> tuple[ReplySegment, ...]:
    """``segments`` with ``notice`` before the first one's text."""
    first, *rest = segments
    text = "\n\n".join(t for t in (notice, first.text.strip()) if t)
    return (dataclasses.replace(first, text=text), *rest)


class RouterPipeline:
    """Implements ``Pipeline`` (with ``SupersedeHook`` and ``ClosablePipeline``) over
    ``children``, one per route of ``fields``. ``services`` names the children that are
    agent services; ``availability`` says whether their endpoints are usable (by default the
    process's shared registry, ``shared_availability()``). Raises ``InvalidValue`` when a
    route has no child, or when rules classify and the classifier route's child is not an
    ``LlmPipeline``."""

    def __init__(
        self,
        fields: RouterPipelineFields,
        children: Mapping[str, Pipeline],
        services: Mapping[str, Service],
        availability: EndpointAvailability | None = None,
        name: str = "router",
        version: str | None = None,
    ) -> None:
        missing = sorted(set(fields.routes) - set(children))
        if missing:
            raise InvalidValue(f"no pipeline for the routes {missing}")
        self.fields = fields
        self.children = dict(children)
        self.services = dict(services)
        self.rules = tuple(RouteRule.from_fields(r) for r in fields.rules)
        self.classifier = classifier_of(fields, self.rules, self.children)
        self._availability = availability
        self.name = name
        self.version = version or router_version(fields, self.children)
        self._running: dict[tuple[str | None, str | None], tuple[Pipeline, RoutedContext]] = {}

    @property
    def availability(self) -> EndpointAvailability:
        if self._availability is None:  # a router without agent services never imports it
            from acf.pipelines.agent_service.availability import shared_availability

            self._availability = shared_availability()
        return self._availability

    def available(self, route: str, now_ms: int) -> bool:
        service = self.services.get(route)
        return service is None or self.availability.usable(service.base_url, now_ms)

    async def sticky_route(self, ctx: TurnContext, now_ms: int) -> str | None:
        """The agent-service route the conversation's agent session keeps, if any."""
        if not self.services or not self.fields.enabled:
            return None
        row: AgentSessionRow | None = await ctx.agent_sessions.open()
        if row is None:
            row = await ctx.agent_sessions.latest()
            sticky_ms = self.fields.sticky_s * 1000
            if (
                row is None
                or row.status is not AgentSessionStatus.COMPLETED
                or row.last_interaction_at_ms + sticky_ms <= now_ms
            ):
                return None
        return next((n for n, s in self.services.items() if s.profile == row.profile), None)

    def replay_route(self, ctx: TurnContext) -> str | None:
        letter = ctx.replay
        route = None if letter is None else letter.request.get(ROUTE_KEY)
        return route if isinstance(route, str) and route in self.children else None

    async def decide(self, ctx: TurnContext) -> TurnDecision:
        """The turn's route; the classifier's model is asked only when its answer can
        decide (``classifier_needed``)."""
        started = time.perf_counter_ns()
        text = turn_text(ctx.messages)
        sticky = await self.sticky_route(ctx, ctx.clock.now_ms())
        replay = self.replay_route(ctx)
        classified = error = None
        if self.classifier is not None and classifier_needed(
            text, self.rules, enabled=self.fields.enabled, sticky_route=sticky, replay_route=replay
        ):
            verdict = await self.classifier.classify(ctx, text)
            classified, error = verdict.route, verdict.error
        now_ms = ctx.clock.now_ms()  # availability as it is after the classifier's wait
        decision = decide(
            text,
            self.rules,
            enabled=self.fields.enabled,
            default=self.fields.default,
            sticky_route=sticky,
            available=lambda route: self.available(route, now_ms),
            fallback=self.fields.fallback,
            replay_route=replay,
            classified=classified,
        )
        return TurnDecision(decision, (time.perf_counter_ns() - started) // 1000, error)

    async def run(self, ctx: TurnContext) -> PipelineResult:
        turn = _turn_input(ctx)
        fresh: list[TurnDecision] = []

        async def decided_now(*_turn: Any) -> dict[str, Any]:
            fresh.append(await self.decide(ctx))
            return _decision_json(fresh[-1].decision)

        # One decision per turn input: a retried or recovered attempt takes the same route
        # (the child may have acted already), whatever availability says by then.
        decision = _decision_of(await ctx.step(ROUTE_STEP, decided_now, *turn))
        if fresh:
            decided = fresh[-1]
            data = decision_data(decision, decided.decision_us, decided.classifier_error)
            await ctx.emit("routing.decision", data)
        else:  # an earlier attempt decided: did it fall back after a refused request?
            earlier = await ctx.step(FALLBACK_STEP, _no_fallback, *turn)
            if earlier is not None:
                decision = _decision_of(earlier)
        result = await self._run_child(ctx, decision)
        refused = result.failed_call is not None and result.failed_call.attempts == 0
        fallback = self.fields.fallback
        if refused and decision.route in self.services and fallback not in (None, decision.route):
            # Nothing reached the service (its circuit refused the request: it opened, or
            # its one half-open probe was another turn's, after the decision): the fallback
            # answers as if the decision had seen it; once per turn input (a step), never
            # after an earlier attempt went to the service.
            assert fallback is not None
            revised = dataclasses.replace(
                decision, route=fallback, reason=Reason.FALLBACK, fallback_from=decision.route
            )

            async def fall_back(*_turn: Any) -> dict[str, Any]:
                return _decision_json(revised)

            if await ctx.step(FALLBACK_STEP, fall_back, *turn) is not None:
                await ctx.emit("routing.decision", decision_data(revised, 0))
                refused_row = result.agent_session
                decision, result = revised, await self._run_child(ctx, revised)
                if result.agent_session is None:  # the refused route's row, left as it is
                    result = dataclasses.replace(result, agent_session=refused_row)
        return self._marked(ctx, decision, result)

    async def _run_child(self, ctx: TurnContext, decision: Decision) -> PipelineResult:
        child = self.children[decision.route]
        rewritten = (
            {} if decision.command is None else without_command(ctx.messages, decision.command)
        )
        routed = RoutedContext(ctx, rewritten)
        key = (ctx.correlation.session_id, ctx.correlation.turn_id)
        running = self._running[key] = (child, routed)
        try:
            return await child.run(routed)
        finally:
            if self._running.get(key) is running:
                del self._running[key]

    def _marked(
        self, ctx: TurnContext, decision: Decision, result: PipelineResult
    ) -> PipelineResult:
        """The child's result with the route, the degraded notice and its state."""
        now_ms = ctx.clock.now_ms()
        degraded = routing_state(ctx.state).get("degraded_route")
        segments = result.segments
        changes: dict[str, Any] = {}
        notice = self.fields.degraded_notice
        if decision.reason is Reason.FALLBACK:
            if degraded is None and notice is not None and segments:
                segments = with_notice(segments, notice)
                changes = {"degraded_since": now_ms, "degraded_route": decision.fallback_from}
        elif isinstance(degraded, str) and self.available(degraded, now_ms):
            changes = {"degraded_since": None, "degraded_route": None}
        patch = result.state_patch
        if changes:
            patch = combine_patches(patch or {}, {"data": {STATE_KEY: changes}})
        failed = result.failed_call
        if failed is not None:
            request = {**failed.request, ROUTE_KEY: decision.route}
            failed = dataclasses.replace(failed, request=request)
        details = {
            **result.details,
            "route": decision.route,
            "routing_reason": decision.reason.value,
        }
        return dataclasses.replace(
            result, segments=segments, state_patch=patch, details=details, failed_call=failed
        )

    def on_new_messages(
        self, ctx: TurnContext, new_messages: Sequence[InboundMessage]
    ) -> SupersedeDecision | None:
        """What the child running this turn decides, when it implements ``SupersedeHook``."""
        running = self._running.get((ctx.correlation.session_id, ctx.correlation.turn_id))
        if running is None:
            return None
        child, routed = running
        if not isinstance(child, SupersedeHook):
            return None
        return child.on_new_messages(routed, new_messages)

    async def aclose(self) -> None:
        """Close every child that holds connections (all of them, even if one fails)."""
        errors: list[BaseException] = []
        for child in self.children.values():
            if isinstance(child, ClosablePipeline):
                try:
                    await child.aclose()
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]


ROUTE_STEP = "router.route"
FALLBACK_STEP = "router.fallback"


def _turn_input(ctx: TurnContext) -> tuple[list[str], str | None]:
    """What the route is decided for: the turn's messages (or the dead letter it replays)."""
    letter = ctx.replay
    return [m.message_id for m in ctx.messages], None if letter is None else letter.dead_letter_id


async def _no_fallback(*_turn: Any) -> dict[str, Any] | None:
    """Seals the fallback step of a turn input decided by an earlier attempt that did not
    fall back: this attempt must not fall back either."""
    return None


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "route": decision.route,
        "reason": decision.reason.value,
        "rule_index": decision.rule_index,
        "text_for_route": decision.text_for_route,
        "fallback_from": decision.fallback_from,
        "command": decision.command,
    }


def _decision_of(raw: Any) -> Decision:
    return Decision(
        route=str(raw["route"]),
        reason=Reason(raw["reason"]),
        rule_index=raw.get("rule_index"),
        text_for_route=str(raw.get("text_for_route", "")),
        fallback_from=raw.get("fallback_from"),
        command=raw.get("command"),
    )
