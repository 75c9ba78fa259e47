"""A version's agents, made safe to replay: every tool over the recorded results, every
model over the recorded completions (and a live model only when one is given).

The version is built as the runtime builds it (``acf.bootstrap.versions.VersionBuilds``),
so a session's turn runs what it would run live: the agent's own binding, or the variant
for the scenario's step and the runtime overrides its state names (``Agents.pinned``).
Every binding, variants included, goes through the same sandboxing before it can run.

An agent answered by an external agent service (``agent_service``, or a router with such a
route) is refused: its own tools act outside acf's ledger, so no replay of it could
promise to leave the world alone. A step variant that is one is not run: its turn fails
(``refused`` says why, and the preview reports it).
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import httpx
import structlog

from acf.bootstrap import BuiltinTools, ToolBackends
from acf.bootstrap.versions import VersionBuilds
from acf.config.load import ConfigError, LoadedConfig
from acf.config.pipelines import LlmPipelineFields
from acf.domain.config_versions import ConfigVersion
from acf.domain.errors import InvalidValue, UnknownAgent
from acf.domain.ids import AgentId
from acf.pipelines.agent_service.pipeline import AgentServicePipeline
from acf.pipelines.llm.completion import Completer
from acf.pipelines.llm.kind import LazyClient
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.routing.pipeline import RouterPipeline
from acf.ports.agent_binding import AgentBinding
from acf.ports.pipeline import Pipeline
from acf.ports.session_store import SessionRecord
from acf.preview.recorded import PreviewError
from acf.preview.recorded_model import InFlight, ModelTally, RecordedModel, Recordings
from acf.preview.recorded_tools import RecordedResults
from acf.service import pinning
from acf.service.agents import Agents, Pinned
from acf.service.built_version import BuiltVersion, unserved_binding

log = structlog.get_logger("acf.preview")


@dataclasses.dataclass(slots=True)
class ModelWiring:
    recordings: Recordings
    inflight: InFlight
    tally: ModelTally
    llm_base_url: str | None = None
    uses_model: bool = False
    """Set when the version has at least one model (an LLM agent, a classifier)."""

    def model(self, fields: LlmPipelineFields, classifier: bool = False) -> RecordedModel:
        self.uses_model = True
        live: Completer | None = None
        if self.llm_base_url is not None:
            live = LazyClient(fields.model_copy(update={"base_url": self.llm_base_url}))
        return RecordedModel(
            self.recordings, fields.models, live, self.inflight, self.tally, classifier
        )


class SandboxAgents(Agents):
    """The static catalog of one version's sandboxed agents that, like a versioned
    ``Agents``, serves a session the variant its state names (scenario, step, runtime
    overrides), built by the version's own variant builder and sandboxed."""

    def __init__(self, built: BuiltVersion) -> None:
        super().__init__({built.version.tenant: built.bindings})
        self._built = built
        self.refused: list[str] = []
        """Variants not run because they could not be sandboxed (their turns failed)."""

    def pipelines(self) -> list[Pipeline]:
        seen = {id(p): p for p in super().pipelines()}
        for pipeline in self._built.pipelines():
            seen.setdefault(id(pipeline), pipeline)
        return list(seen.values())

    async def pinned(self, session: SessionRecord) -> Pinned:
        """As ``Agents.pinned`` does for a version: the session's variant (one that does
        not fit is logged and the agent's own binding served), labelled as the catalog."""
        built, agent = self._built, session.key.agent
        if session.tenant != built.version.tenant:
            return await super().pinned(session)
        scenario, step = pinning.scenario_of(session.state)
        overrides = pinning.overrides_of(session.state)
        try:
            binding = built.binding(agent, scenario, step, overrides)
        except UnknownAgent:
            raise
        except InvalidValue as exc:
            log.warning(
                "preview.variant_refused",
                session_id=session.session_id,
                scenario=scenario,
                step=step,
                error=str(exc),
            )
            binding = built.binding(agent)
        stamp = None
        if scenario is not None and (digest := built.scenario_hash(agent, scenario)):
            stamp = pinning.scenario_stamp(built.label, scenario, digest)
        return Pinned(binding, self.config_version, None, stamp)


def _refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("the preview never calls a tool backend", request=request)


def sandbox_agents(
    version: ConfigVersion,
    loaded: LoadedConfig,
    results: RecordedResults,
    wiring: ModelWiring,
    builtin: BuiltinTools | None = None,
) -> tuple[SandboxAgents, httpx.AsyncClient]:
    """The agents of ``version`` (its content: ``loaded``); the client (to close) refuses
    every request: the tools are replaced, it is there only because HTTP tools are built
    over one."""
    tenant = version.tenant
    if tenant not in loaded.config.tenants:
        raise PreviewError(f"the version holds no tenant {tenant}")
    client = httpx.AsyncClient(transport=httpx.MockTransport(_refusing))
    builds = VersionBuilds(ToolBackends(client, builtin or BuiltinTools()))
    try:
        built = builds.from_loaded(version, loaded)
    except (ConfigError, InvalidValue) as exc:
        raise PreviewError(f"the version does not build here: {exc}") from None
    bindings = {
        agent: _sandboxed(binding, f"agent {agent}", results, wiring)
        for agent, binding in built.bindings.items()
    }
    variant = built.variant
    agents: SandboxAgents

    def sandboxed_variant(
        agent: AgentId, scenario: str | None, step: str | None, overrides: Mapping[str, Any]
    ) -> AgentBinding:
        assert variant is not None
        binding = variant(agent, scenario, step, overrides)
        where = f"agent {agent} in scenario {scenario} step {step}"
        try:
            return _sandboxed(binding, where, results, wiring)
        except PreviewError as exc:
            agents.refused.append(str(exc))
            return unserved_binding(str(exc))

    sandboxed = BuiltVersion(
        version, bindings, sandboxed_variant if variant is not None else None, built.upcaster
    )
    agents = SandboxAgents(sandboxed)
    return agents, client


def _sandboxed(
    binding: AgentBinding, where: str, results: RecordedResults, wiring: ModelWiring
) -> AgentBinding:
    _sandbox(binding.pipeline, where, wiring)
    return AgentBinding(binding.pipeline, binding.settings, results.registry(binding.tools))


def _sandbox(pipeline: Pipeline, where: str, wiring: ModelWiring) -> None:
    if isinstance(pipeline, AgentServicePipeline) or (
        isinstance(pipeline, RouterPipeline) and pipeline.services
    ):
        raise PreviewError(
            f"{where} is answered by an external agent service, whose own tools act outside "
            "acf's ledger: it cannot be replayed without side effects"
        )
    if isinstance(pipeline, LlmPipeline):
        pipeline.setup = dataclasses.replace(
            pipeline.setup, completer=wiring.model(pipeline.setup.fields)
        )
    if isinstance(pipeline, RouterPipeline):
        for name, child in pipeline.children.items():
            _sandbox(child, f"{where} route {name}", wiring)
        route = pipeline.fields.classifier_route
        classifying = pipeline.children.get(route) if route is not None else None
        if pipeline.classifier is not None and isinstance(classifying, LlmPipeline):
            pipeline.classifier.completer = wiring.model(classifying.setup.fields, classifier=True)
