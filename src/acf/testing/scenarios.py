"""Scenarios as data (DESIGN §13): YAML files run by the harness on a virtual clock.

The format is documented in ``docs/scenarios.md``. ``load`` validates a file (errors name
the file and the field), ``run`` plays it and returns a ``ScenarioResult`` listing every
failed expectation and every broken invariant.
"""

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from acf.config.people import FirewallFields, HandoffFields
from acf.config.tools import ToolSpecFields
from acf.domain.agent_settings import DEFAULT_FALLBACK_TEXT, AgentSettings
from acf.domain.channels import Channel
from acf.domain.errors import InvalidValue
from acf.domain.policy import DEFAULT_CHANNEL_POLICIES, AccumulationMode, ChannelPolicy
from acf.domain.supersede import SupersedeDecision
from acf.ports.checkpoints import Phase
from acf.service.lease_keeper import LeaseSettings
from acf.testing import expectations, invariants, scenario_llm, scenario_people
from acf.testing.expectations import Expect
from acf.testing.harness import TENANT, Harness, HarnessOptions
from acf.testing.pipeline import Script
from acf.testing.scenario_llm import ModelSpec
from acf.testing.scenario_people import (
    BlockStep,
    ClaimStep,
    HandoffStep,
    NoteStep,
    PersonStep,
    ReplyStep,
)
from acf.testing.tools import ToolBackend


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicySpec(_Model):
    mode: AccumulationMode
    window_ms: int = 0
    min_window_ms: int = 0
    max_window_ms: int = 0
    typing_grace_ms: int = 0
    incomplete_window_ms: int = 0
    typing_hold_ms: int = 0
    pace: bool = False


class AgentSpec(_Model):
    supersede: SupersedeDecision = SupersedeDecision.SUPERSEDE
    restart_bound: int = 3
    max_attempts: int = 3
    retry_backoff_ms: int = 500
    deadline_ms: int = 30_000
    fallback_text: str = DEFAULT_FALLBACK_TEXT
    channel_policies: dict[Channel, PolicySpec] = Field(default_factory=dict)


class ToolDef(ToolSpecFields):
    """A tool the scenario's agent may call, with a scripted backend."""

    delay_ms: int = 50
    fails: bool = False
    reconcile: str | None = None


class PipelineSpec(_Model):
    steps: list[dict[str, Any]] = Field(default_factory=list)
    reply: str | None = "echo: {text}"
    on_new_messages: SupersedeDecision | None = None
    state_patch: dict[str, Any] | None = None
    handoff: str | None = None


class SendSpec(_Model):
    customer: str = "alice"
    text: str | None = None
    button: str | None = None
    channel: Channel = Channel.WEB
    id: str | None = None
    tenant: str = TENANT
    customers: int | None = None
    """Send to this many customers at once (c0, c1, ...), concurrently."""


class TypingSpec(_Model):
    customer: str = "alice"
    active: bool = True
    channel: Channel = Channel.WEB


class FailSendsSpec(_Model):
    count: int = 1
    definite: bool = False


class InjectSpec(_Model):
    phase: Phase
    send: SendSpec


class Step(_Model):
    at: int = Field(ge=0, description="milliseconds from the scenario's start")
    send: SendSpec | None = None
    inject: InjectSpec | None = None
    typing: TypingSpec | None = None
    crash: bool = False
    crash_at: Phase | None = None
    steal_lease: str | None = None
    fail_sends: FailSendsSpec | None = None
    handoff: HandoffStep | None = None
    claim: ClaimStep | None = None
    operator_reply: ReplyStep | None = None
    release: NoteStep | None = None
    resume: NoteStep | None = None
    block: BlockStep | None = None
    unblock: PersonStep | None = None
    wait: bool = False
    """Nothing but the time passing up to ``at`` (a cool-down, a block's expiry)."""

    @model_validator(mode="after")
    def _one_action(self) -> "Step":
        actions = [
            self.send,
            self.inject,
            self.typing,
            self.crash or None,
            self.crash_at,
            self.steal_lease,
            self.fail_sends,
            self.handoff,
            self.claim,
            self.operator_reply,
            self.release,
            self.resume,
            self.block,
            self.unblock,
            self.wait or None,
        ]
        if sum(a is not None for a in actions) != 1:
            raise ValueError(
                "each step needs exactly one of send, inject, typing, crash, crash_at, "
                "steal_lease, fail_sends, handoff, claim, operator_reply, release, resume, "
                "block, unblock, wait"
            )
        return self


class Scenario(_Model):
    name: str
    description: str = ""
    tenants: list[str] = Field(default_factory=lambda: [TENANT])
    agent: AgentSpec = Field(default_factory=AgentSpec)
    pipeline: PipelineSpec = Field(default_factory=PipelineSpec)
    model: ModelSpec | None = None
    lease: dict[str, int] = Field(default_factory=dict)
    tools: list[ToolDef] = Field(default_factory=list)
    handoff: HandoffFields | None = None
    """Every tenant's ``handoff:`` policy (default: the product's)."""
    firewall: FirewallFields | None = None
    """Every tenant's ``firewall:`` policy (default: off)."""
    runtimes: int = Field(1, ge=1, le=4)
    """Runtimes on the same store, all woken by every message (only the lease serializes)."""
    script: list[Step]
    run_for_ms: int = 600_000
    wall_limit_s: float = 60.0
    """Real seconds the scenario may take (a livelock fails instead of hanging)."""
    expect: Expect = Field(default_factory=Expect)


class ScenarioError(Exception):
    """A scenario file that cannot be read or does not follow the format."""


def load(path: Path) -> Scenario:
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    try:
        return Scenario.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise ScenarioError(f"{path}: {problems}") from None


def discover(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*.yaml") if p.is_file())
    return [path]


@dataclass(slots=True)
class ScenarioResult:
    name: str
    path: Path | None
    problems: list[str] = field(default_factory=list)
    replies: int = 0
    crashes: int = 0
    virtual_ms: int = 0
    wall_ms: int = 0

    @property
    def passed(self) -> bool:
        return not self.problems


def _options(s: Scenario) -> HarnessOptions:
    policies = dict(DEFAULT_CHANNEL_POLICIES)
    for channel, spec in s.agent.channel_policies.items():
        policies[channel] = ChannelPolicy(**spec.model_dump())
    settings = AgentSettings(
        supersede=s.agent.supersede,
        restart_bound=s.agent.restart_bound,
        max_attempts=s.agent.max_attempts,
        retry_backoff_ms=s.agent.retry_backoff_ms,
        deadline_ms=s.agent.deadline_ms,
        fallback_text=s.agent.fallback_text,
        channel_policies=policies,
    )
    script = Script(
        steps=tuple(s.pipeline.steps),
        reply=s.pipeline.reply,
        on_new_messages=s.pipeline.on_new_messages,
        state_patch=s.pipeline.state_patch,
        handoff=s.pipeline.handoff,
    )
    backends = tuple(ToolBackend(t.to_spec(), t.delay_ms, t.fails, t.reconcile) for t in s.tools)
    pipeline = None if s.model is None else s.model.pipeline([t.to_spec() for t in s.tools])
    return HarnessOptions(
        script,
        settings,
        tuple(s.tenants),
        LeaseSettings(**s.lease),
        pipeline=pipeline,
        tools=backends,
        people=scenario_people.policies(s.handoff, s.firewall),
    )


async def _act(h: Harness, step: Step) -> list[str]:
    """Play ``step``; the problems it met (a person's action refused unexpectedly)."""
    if step.send is not None:
        spec = step.send
        if spec.customers:
            await asyncio.gather(
                *(
                    h.send(
                        f"c{i}",
                        spec.text,
                        spec.channel,
                        None,
                        spec.button,
                        spec.tenant,
                        settle=False,
                    )
                    for i in range(spec.customers)
                )
            )
            await h.settle()
        else:
            button = await _button(h, spec)
            await h.send(spec.customer, spec.text, spec.channel, spec.id, button, spec.tenant)
    elif step.inject is not None:
        spec = step.inject.send

        async def inject() -> None:
            await h.send(
                spec.customer,
                spec.text,
                spec.channel,
                spec.id,
                spec.button,
                spec.tenant,
                settle=False,
            )

        h.inject_at(step.inject.phase, inject)
    elif step.typing is not None:
        await h.typing(step.typing.customer, step.typing.active, step.typing.channel)
    elif step.crash:
        await h.crash()
        await h.settle()
    elif step.crash_at is not None:
        h.crash_at(step.crash_at)
    elif step.steal_lease is not None:
        await h.steal_lease(step.steal_lease)
    elif step.fail_sends is not None:
        h.channel.fail_next(step.fail_sends.count, step.fail_sends.definite)
    else:
        return await scenario_people.act(
            h,
            handoff=step.handoff,
            claim=step.claim,
            operator_reply=step.operator_reply,
            release=step.release,
            resume=step.resume,
            block=step.block,
            unblock=step.unblock,
        )
    return []


async def _button(h: Harness, spec: SendSpec) -> str | None:
    """``$confirm:yes`` / ``$confirm:no`` press the button of the session's pending
    confirmation (its ids are generated)."""
    if spec.button is None or not spec.button.startswith("$confirm:"):
        return spec.button
    key = h.key(spec.customer, spec.channel, spec.tenant)
    session = await h.store.sessions.find_open(spec.tenant, key)
    pending = None if session is None else session.state.get("meta", {}).get("confirmation")
    if pending is None:
        return "no-pending-confirmation"
    return str(pending["yes_id"] if spec.button.endswith(":yes") else pending["no_id"])


async def run(
    scenario: Scenario,
    data_dir: Path,
    path: Path | None = None,
    options: HarnessOptions | None = None,
) -> ScenarioResult:
    """Run ``scenario`` on a fresh harness in ``data_dir`` and check its expectations and
    the invariants. ``options``: the harness's agents and tools, when not the scenario's
    own (``acf scenarios run --version`` runs a stored version's agent)."""
    result = ScenarioResult(scenario.name, path)
    began = time.perf_counter()
    async with Harness(data_dir, options or _options(scenario)) as h:
        for _ in range(scenario.runtimes - 1):
            await h.add_runtime()
        start = h.clock.now_ms()
        try:
            async with asyncio.timeout(scenario.wall_limit_s):
                for step in sorted(scenario.script, key=lambda s: s.at):
                    await h.advance(max(0, start + step.at - h.clock.now_ms()))
                    result.problems += [f"step at {step.at}: {p}" for p in await _act(h, step)]
                await h.run_until_idle(scenario.run_for_ms)
        except TimeoutError as exc:
            result.problems.append(
                str(exc) or f"not done after {scenario.wall_limit_s} s of real time (livelock?)"
            )
        result.problems += await expectations.check(h, scenario, start)
        result.problems += await scenario_llm.check(h, scenario)
        result.problems += await scenario_people.check(h, scenario)
        result.problems += await invariants.check_all(
            h.store, scenario.tenants, h.channel, h.tally, allowed_repeats=scenario.expect.repeats
        )
        result.replies = len(h.replies())
        result.crashes = h.crashes
        result.virtual_ms = h.clock.now_ms() - start
    result.wall_ms = round((time.perf_counter() - began) * 1000)
    return result


async def run_path(path: Path) -> list[ScenarioResult]:
    """Load and run every scenario under ``path``, each on a fresh SQLite file."""
    results = []
    for file in discover(path):
        try:
            scenario = load(file)
        except ScenarioError as exc:
            results.append(ScenarioResult(file.stem, file, [str(exc)]))
            continue
        with tempfile.TemporaryDirectory(prefix="acf-scenario-") as tmp:
            try:
                results.append(await run(scenario, Path(tmp), file))
            except InvalidValue as exc:  # a tool or policy the domain refuses
                results.append(ScenarioResult(scenario.name, file, [f"{file}: {exc}"]))
    return results
