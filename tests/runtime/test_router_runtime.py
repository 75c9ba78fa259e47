"""The router on the embedded runtime (a real SQLite file, the real ingress, a virtual
clock): new messages are decided by the child running the turn, the routed context keeps
the command off the text after ``absorb()``, a dead letter of a routed turn replays on
the route that failed, and a retried attempt reuses the decision (the classifier's answer,
the route) of the first."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acf.config.pipelines import LlmPipelineFields, RouterPipelineFields
from acf.domain.events import EventKind
from acf.domain.replies import FailedCall, PipelineResult
from acf.domain.supersede import SupersedeDecision
from acf.pipelines.llm.completion import Completion
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.llm.prompt import PromptSource
from acf.pipelines.routing.pipeline import RouterPipeline, Service
from acf.ports.clock import Clock
from acf.ports.event_store import EventQuery
from acf.ports.pipeline import Pipeline, TurnContext
from acf.service.dead_letters import request_replay
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.invariants import check_all
from acf.testing.pipeline import Script, ScriptedPipeline

WINDOW_MS = 5000
"""Longer than the web chat's accumulation window: the turn has started by then."""


def routing(*routes: str) -> RouterPipelineFields:
    """Routes named ``routes`` (the first is the default), each entered by ``/<name>``."""
    return RouterPipelineFields.model_validate(
        {
            "kind": "router",
            # the children are built by the test; their fields only name the routes
            "routes": {r: {"kind": "python", "factory": f"tests.none:{r}"} for r in routes},
            "default": routes[0],
            "rules": [{"route": r, "commands": [f"/{r}"]} for r in routes],
        }
    )


def router(children: dict[str, Pipeline]) -> RouterPipeline:
    return RouterPipeline(routing(*children), children, {})


async def decisions(h: Harness) -> list[tuple[str, str]]:
    events = await h.store.events.query(
        TENANT, EventQuery(kinds=(EventKind.TURN_PROGRESS,), limit=10_000)
    )
    return [
        (e.data["route"], e.data["reason"]) for e in events if e.data["name"] == "routing.decision"
    ]


async def test_new_messages_are_decided_by_the_child_running_the_turn(tmp_path: Path) -> None:
    slow = Script(
        steps=({"sleep": 3 * WINDOW_MS},),
        reply="slow: {text}",
        on_new_messages=SupersedeDecision.QUEUE,
    )
    children: dict[str, Pipeline] = {
        "plain": ScriptedPipeline(Script(reply="plain: {text}")),
        "slow": ScriptedPipeline(slow),
    }
    async with Harness(tmp_path, HarnessOptions(pipeline=router(children))) as h:
        await h.send("ana", "/slow a")
        await h.advance(WINDOW_MS)
        await h.send("ana", "b")  # the slow child says QUEUE: no restart
        await h.run_until_idle()
        assert h.replies("ana") == ["slow: a", "plain: b"]
        assert await decisions(h) == [("slow", "command"), ("plain", "default")]
        assert await check_all(h.store, [TENANT], h.channel, h.tally) == []


async def test_a_child_that_absorbs_still_reads_the_text_without_the_command(
    tmp_path: Path,
) -> None:
    absorbing = Script(
        steps=({"sleep": 3 * WINDOW_MS}, {"absorb": True}),
        reply="slow: {text}",
        on_new_messages=SupersedeDecision.ABSORB,
    )
    children: dict[str, Pipeline] = {
        "plain": ScriptedPipeline(Script(reply="plain: {text}")),
        "slow": ScriptedPipeline(absorbing),
    }
    async with Harness(tmp_path, HarnessOptions(pipeline=router(children))) as h:
        await h.send("ana", "/SLOW   a")
        await h.advance(WINDOW_MS)
        await h.send("ana", "b")
        await h.run_until_idle()
        assert h.replies("ana") == ["slow: a | b"]
        assert await decisions(h) == [("slow", "command")]


class GivesUpOnce:
    """Reports a call that failed for good; on a replay, answers with what it was asked."""

    name = "flaky"
    version = "1"

    def __init__(self) -> None:
        self.replays: list[dict[str, Any]] = []

    async def run(self, ctx: TurnContext) -> PipelineResult:
        if ctx.replay is not None:
            self.replays.append(dict(ctx.replay.request))
            return PipelineResult.reply(f"replayed: {ctx.replay.request['asked']}")
        asked = {"asked": " ".join(m.text or "" for m in ctx.messages)}
        return PipelineResult.reply("Sorry, later.", failed_call=FailedCall(asked, "down", 3))


async def test_a_dead_letter_replays_on_the_route_that_failed(tmp_path: Path) -> None:
    flaky = GivesUpOnce()
    children: dict[str, Pipeline] = {
        "plain": ScriptedPipeline(Script(reply="plain: {text}")),
        "flaky": flaky,
    }
    async with Harness(tmp_path, HarnessOptions(pipeline=router(children))) as h:
        await h.send("ana", "/flaky where is it?")
        await h.run_until_idle()
        assert h.replies("ana") == ["Sorry, later."]
        (letter,) = await h.store.dead_letters.list(TENANT)
        assert letter.pipeline == "router"
        assert letter.request == {"asked": "where is it?", "router.route": "flaky"}
        await request_replay(h.store, h.runtime.notify, h.clock, TENANT, letter.dead_letter_id)
        await h.run_until_idle()
        assert h.replies("ana")[-1] == "replayed: where is it?"
        assert flaky.replays == [{"asked": "where is it?"}]  # the router's key is its own
        assert await decisions(h) == [("flaky", "command"), ("flaky", "replay")]


class Classifying:
    """A ``Completer`` (the model behind the ``llm`` route) whose every answer is
    ``answer``; it counts the requests it gets."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.requests: list[Mapping[str, Any]] = []

    async def complete(
        self,
        request: Mapping[str, Any],
        *,
        clock: Clock,
        deadline_ms: int,
        on_delta: Any = None,
        on_event: Any = None,
    ) -> Completion:
        self.requests.append(request)
        return Completion("m", self.answer, finish_reason="stop")


async def test_a_retried_attempt_reuses_the_classifiers_answer(tmp_path: Path) -> None:
    llm = LlmPipelineFields(kind="llm", model="m", base_url="http://127.0.0.1:9/v1")
    fields = RouterPipelineFields.model_validate(
        {
            "kind": "router",
            "routes": {"direct": llm.model_dump(), "flaky": {"kind": "python", "factory": "x:y"}},
            "default": "direct",
            "rules": [{"route": "flaky", "classify": "anything that fails once"}],
        }
    )
    model = Classifying("flaky")
    children: dict[str, Pipeline] = {
        "direct": LlmPipeline(llm, PromptSource("Help."), [], model),
        "flaky": ScriptedPipeline(
            Script(steps=({"raise": "down", "attempts": 1},), reply="flaky: {text}")
        ),
    }
    async with Harness(
        tmp_path, HarnessOptions(pipeline=RouterPipeline(fields, children, {}))
    ) as h:
        await h.send("ana", "please try this")
        await h.run_until_idle()
        assert h.replies("ana") == ["flaky: please try this"]
        assert len(model.requests) == 1  # the second attempt read the stored decision
        assert await decisions(h) == [("flaky", "classifier")]  # one decision per turn input


class Toggle:
    """An availability the test flips."""

    def __init__(self) -> None:
        self.up = True

    def usable(self, base_url: str, now_ms: int) -> bool:
        return self.up


class FailsOnceThenFlips:
    """An ``agent`` child whose first attempt fails after the service went down: the
    retry must not move the turn to another route (the child may have acted already)."""

    name, version = "agent", "1"

    def __init__(self, availability: Toggle) -> None:
        self.availability = availability
        self.runs = 0

    async def run(self, ctx: TurnContext) -> PipelineResult:
        self.runs += 1
        if self.runs == 1:
            self.availability.up = False
            raise RuntimeError("cut after the service started")
        return PipelineResult.reply("agent: done")


async def test_a_retried_attempt_keeps_the_route_of_the_first(tmp_path: Path) -> None:
    fields = RouterPipelineFields.model_validate(
        {
            "kind": "router",
            "routes": {
                "direct": {"kind": "python", "factory": "tests.none:direct"},
                "agent": {"kind": "python", "factory": "tests.none:agent"},
            },
            "default": "direct",
            "fallback": "direct",
            "rules": [{"route": "agent", "commands": ["/agent"]}],
            "degraded_notice": None,
        }
    )
    toggle = Toggle()
    agent = FailsOnceThenFlips(toggle)
    children: dict[str, Pipeline] = {
        "direct": ScriptedPipeline(Script(reply="direct: {text}")),
        "agent": agent,
    }
    services = {"agent": Service("http://agent.invalid", "support")}
    pipeline = RouterPipeline(fields, children, services, toggle)
    async with Harness(tmp_path, HarnessOptions(pipeline=pipeline)) as h:
        await h.send("ana", "/agent book it")
        await h.run_until_idle()
        assert h.replies("ana") == ["agent: done"]  # not the fallback: the same route
        assert agent.runs == 2
        assert await decisions(h) == [("agent", "command")]
