"""The ``llm`` pipeline kind: the prompt (inline, or ``system_prompt_file`` relative to the
configuration file, whose bytes count in the configuration's version) and the tenant's
display name are read when the configuration loads; claim patterns are checked against
the agent's tools when its pipeline is built.

The model client is made on the first request (``LazyClient``), so loading a configuration
never opens a connection nor reads a secret: ``api_key`` is resolved then, from the
environment (``acf.config.secrets``). A secret still missing at that point fails the
request as the model being unavailable (the turn goes to the fallback); ``acf config
validate`` lists it beforehand (``LoadedConfig.missing_secrets``).
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from acf.config.kinds import AgentSite, LoadedFiles
from acf.config.pipelines import LlmPipelineFields
from acf.config.secrets import resolve_secrets
from acf.domain.errors import InvalidValue
from acf.domain.tools import ToolSpec
from acf.pipelines.llm.completion import Completer, Completion, LlmUnavailable, OnDelta, OnEvent
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.llm.prompt import PromptSource
from acf.ports.clock import Clock
from acf.ports.pipeline import Pipeline


def make_client(fields: LlmPipelineFields) -> Completer:
    """The production ``Completer`` of ``fields``: an ``LlmClient`` for its endpoint and
    models. Raises ``LlmUnavailable`` when its API key's secret is not set."""
    from acf.pipelines.llm.client import LlmClient, LlmTimeouts  # the SDK, when first used

    try:
        api_key = "" if fields.api_key is None else resolve_secrets(fields.api_key, what="llm")
    except InvalidValue as exc:
        raise LlmUnavailable(str(exc)) from None
    timeouts = fields.timeouts
    return LlmClient(
        base_url=fields.base_url,
        api_key=api_key,
        models=fields.models,
        timeouts=LlmTimeouts(timeouts.connect_s, timeouts.first_token_s, timeouts.request_s),
    )


class LazyClient:
    """A ``Completer`` that makes the real one (``make_client``) on its first request."""

    def __init__(self, fields: LlmPipelineFields) -> None:
        self._fields = fields
        self._client: Completer | None = None

    async def complete(
        self,
        request: Mapping[str, Any],
        *,
        clock: Clock,
        deadline_ms: int,
        on_delta: OnDelta | None = None,
        on_event: OnEvent | None = None,
    ) -> Completion:
        if self._client is None:
            self._client = make_client(self._fields)
        return await self._client.complete(
            request, clock=clock, deadline_ms=deadline_ms, on_delta=on_delta, on_event=on_event
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        close = getattr(client, "aclose", None)
        if close is not None:
            await close()


LLM_HISTORY_LIMIT = 200
"""Messages (and replies) an LLM agent's turn reads by default: its ``history_tokens``
budget and rolling summary decide what the model sees of them."""


class LlmKind:
    settings_defaults: Mapping[str, Any] = {"history_limit": LLM_HISTORY_LIMIT}

    def load(self, fields: Any, where: str, base_dir: Path) -> LoadedFiles:
        return self.load_at(fields, where, base_dir, None)

    def load_at(
        self, fields: Any, where: str, base_dir: Path, site: AgentSite | None
    ) -> LoadedFiles:
        assert isinstance(fields, LlmPipelineFields)
        display_name = None if site is None else site.tenant_display_name
        if fields.system_prompt_file is None:
            return LoadedFiles(PromptSource(fields.system_prompt, display_name))
        path = Path(fields.system_prompt_file)
        if not path.is_absolute():
            path = base_dir / path
        if not path.is_file():
            raise InvalidValue(f"{where}.system_prompt_file: no such file {path}")
        content = path.read_bytes()
        try:
            template = content.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidValue(f"{where}.system_prompt_file: {path} is not UTF-8 text") from None
        if not template.strip():
            raise InvalidValue(f"{where}.system_prompt_file: {path} is empty")
        files = {fields.system_prompt_file: template}
        return LoadedFiles(PromptSource(template, display_name), content, files)

    def build(
        self, fields: Any, files: object | None, tools: Sequence[ToolSpec], where: str
    ) -> Pipeline:
        assert isinstance(fields, LlmPipelineFields)
        prompt = files if isinstance(files, PromptSource) else PromptSource(fields.system_prompt)
        allowed = {t.name for t in tools}
        unknown = sorted(set(fields.enforcement.claims) - allowed)
        if unknown:
            raise InvalidValue(
                f"{where}.enforcement.claims: {unknown} are not among the agent's tools "
                f"{sorted(allowed)}"
            )
        try:
            return LlmPipeline(fields, prompt, tools, LazyClient(fields))
        except InvalidValue as exc:
            raise InvalidValue(f"{where}.tools: {exc}") from None


KIND = LlmKind()
