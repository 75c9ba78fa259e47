"""A version's agents, made safe to replay: every tool over the recorded results, every
model over the recorded completions (and a live model only when one is given).

An agent answered by an external agent service (``agent_service``, or a router with such a
route) is refused: its own tools act outside acf's ledger, so no replay of it could
promise to leave the world alone.
"""

import dataclasses
from collections.abc import Mapping

import httpx

from acf.bootstrap import BuiltinTools, ToolBackends, build_agents
from acf.config.load import ConfigError, LoadedConfig
from acf.config.pipelines import LlmPipelineFields
from acf.domain.errors import InvalidValue
from acf.pipelines.agent_service.pipeline import AgentServicePipeline
from acf.pipelines.llm.completion import Completer
from acf.pipelines.llm.kind import LazyClient
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.routing.pipeline import RouterPipeline
from acf.ports.agent_binding import AgentBinding
from acf.ports.pipeline import Pipeline
from acf.preview.recorded import PreviewError
from acf.preview.recorded_model import InFlight, ModelTally, RecordedModel, Recordings
from acf.preview.recorded_tools import RecordedResults
from acf.service.agents import Agents


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


def _refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("the preview never calls a tool backend", request=request)


def sandbox_agents(
    loaded: LoadedConfig,
    tenant: str,
    results: RecordedResults,
    wiring: ModelWiring,
    builtin: BuiltinTools | None = None,
) -> tuple[Agents, httpx.AsyncClient]:
    """The tenant's agents of ``loaded``; the client (to close) refuses every request: the
    tools are replaced, it is there only because HTTP tools are built over one."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(_refusing))
    try:
        built = build_agents(loaded, ToolBackends(client, builtin or BuiltinTools()))
    except (ConfigError, InvalidValue) as exc:
        raise PreviewError(f"the version does not build here: {exc}") from None
    tenant_fields = loaded.config.tenants.get(tenant)
    if tenant_fields is None:
        raise PreviewError(f"the version holds no tenant {tenant}")
    bindings: dict[str, AgentBinding] = {}
    for agent in tenant_fields.agents:
        binding = built.get(tenant, agent)
        _sandbox(binding.pipeline, f"agent {agent}", wiring)
        bindings[agent] = AgentBinding(
            binding.pipeline, binding.settings, results.registry(binding.tools)
        )
    catalog: Mapping[str, Mapping[str, AgentBinding]] = {tenant: bindings}
    return Agents(catalog), client


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
