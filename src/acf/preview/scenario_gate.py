"""Scenario files run against a tenant's version (``acf scenarios run --tenant --version``).

Each scenario plays its script as usual (``acf.testing.scenarios``), but its agent is the
version's: the pipeline, settings and tool allowlist of the tenant's agent in that version
(the only one, or the one named), served under the harness's tenant and agent names. The
scenario keeps what makes it a test: its script, its expectations, scripted tool backends
(a ``tools:`` entry of the same name sets a tool's delay and failures; a tool the version
allows and the scenario does not list gets a default one that succeeds) and, for an agent
with a model, its scripted ``model:`` answering every model request. Nothing reaches a
real tool backend, model or channel. The result, recorded with ``RecordGate`` as the
version's ``scenarios`` gate, is what ``promote`` checks.
"""

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from acf.bootstrap import BuiltinTools, ToolBackends, build_agents
from acf.config.load import ConfigError, LoadedConfig
from acf.domain.errors import InvalidValue
from acf.pipelines.agent_service.pipeline import AgentServicePipeline
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.routing.pipeline import RouterPipeline
from acf.ports.agent_binding import AgentBinding
from acf.ports.pipeline import Pipeline
from acf.preview.recorded import PreviewError
from acf.service.lease_keeper import LeaseSettings
from acf.testing.harness import HarnessOptions
from acf.testing.scenarios import Scenario, ScenarioError, ScenarioResult, discover, load, run
from acf.testing.tools import ToolBackend

SET_BY_VERSION = ("agent", "pipeline")
"""Scenario fields the version decides under ``--version`` (a file setting them is refused
rather than silently overridden)."""


def pick_agent(loaded: LoadedConfig, tenant: str, agent: str | None) -> str:
    fields = loaded.config.tenants.get(tenant)
    if fields is None:
        raise PreviewError(f"the version holds no tenant {tenant}")
    names = sorted(fields.agents)
    if agent is not None:
        if agent not in names:
            raise PreviewError(f"tenant {tenant} has no agent {agent} in this version: {names}")
        return agent
    if len(names) != 1:
        raise PreviewError(f"tenant {tenant} has agents {names}: name one with --agent")
    return names[0]


async def run_against(
    path: Path,
    loaded: LoadedConfig,
    tenant: str,
    agent: str,
    builtin: BuiltinTools | None = None,
) -> list[ScenarioResult]:
    """Every scenario under ``path`` against ``tenant``'s ``agent`` of ``loaded``, each on a
    fresh SQLite file."""
    results = []
    for file in discover(path):
        try:
            scenario = load(file)
        except ScenarioError as exc:
            results.append(ScenarioResult(file.stem, file, [str(exc)]))
            continue
        async with httpx.AsyncClient(transport=httpx.MockTransport(_refusing)) as client:
            try:
                options = _options(scenario, loaded, tenant, agent, client, builtin)
            except PreviewError as exc:
                results.append(ScenarioResult(scenario.name, file, [f"{file}: {exc}"]))
                continue
            with tempfile.TemporaryDirectory(prefix="acf-scenario-") as tmp:
                try:
                    results.append(await run(scenario, Path(tmp), file, options))
                except InvalidValue as exc:
                    results.append(ScenarioResult(scenario.name, file, [f"{file}: {exc}"]))
    return results


def summary(results: Sequence[ScenarioResult], path: Path, agent: str) -> dict[str, Any]:
    """What the gate records: counts, the failed scenarios and their first problems."""
    failed = [r for r in results if not r.passed]
    return {
        "path": str(path),
        "agent": agent,
        "scenarios": len(results),
        "passed": len(results) - len(failed),
        "failed": [{"name": r.name, "problems": r.problems[:3]} for r in failed],
    }


def _refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("a scenario never calls a tool backend", request=request)


def _options(
    s: Scenario,
    loaded: LoadedConfig,
    tenant: str,
    agent: str,
    client: httpx.AsyncClient,
    builtin: BuiltinTools | None,
) -> HarnessOptions:
    set_here = [name for name in SET_BY_VERSION if name in s.model_fields_set]
    if set_here:
        raise PreviewError(
            f"{', '.join(set_here)}: set by the version under --version; remove them"
        )
    try:  # a fresh pipeline per scenario: nothing carries over from the one before
        built = build_agents(loaded, ToolBackends(client, builtin or BuiltinTools()))
    except (ConfigError, InvalidValue) as exc:
        raise PreviewError(f"the version does not build here: {exc}") from None
    binding: AgentBinding = built.get(tenant, agent)
    allowed = {n: t.spec for n in binding.tools.names() if (t := binding.tools.get(n))}
    scripted = {t.name: t for t in s.tools}
    extra = sorted(set(scripted) - set(allowed))
    if extra:
        raise PreviewError(f"tools: {extra} are not allowed to agent {agent} in this version")
    backends = tuple(
        ToolBackend(spec)
        if name not in scripted
        else ToolBackend(
            spec, scripted[name].delay_ms, scripted[name].fails, scripted[name].reconcile
        )
        for name, spec in sorted(allowed.items())
    )
    _script_models(binding.pipeline, s)
    return HarnessOptions(
        settings=binding.settings,
        tenants=tuple(s.tenants),
        lease=LeaseSettings(**s.lease),
        pipeline=binding.pipeline,
        tools=backends,
    )


def _script_models(pipeline: Pipeline, s: Scenario) -> None:
    if isinstance(pipeline, AgentServicePipeline) or (
        isinstance(pipeline, RouterPipeline) and pipeline.services
    ):
        raise PreviewError("the agent is an external agent service: scenarios cannot run it")
    if isinstance(pipeline, LlmPipeline):
        if s.model is None:
            raise PreviewError("the agent asks a model: give the scenario a `model:`")
        pipeline.setup = dataclasses.replace(pipeline.setup, completer=s.model.scripted())
    if isinstance(pipeline, RouterPipeline):
        for child in pipeline.children.values():
            _script_models(child, s)
        if pipeline.classifier is not None:
            if s.model is None:
                raise PreviewError("the router classifies with a model: give a `model:`")
            pipeline.classifier.completer = s.model.scripted()
