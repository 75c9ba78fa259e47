"""``LlmPipeline``: the built-in LLM agent (``pipeline: {kind: llm}``, DESIGN §16).

It asks a ``Completer`` (``acf.pipelines.llm.client.LlmClient`` in production; a test
injects its own) and speaks to the turn only through ``TurnContext``: tools through the
gateway, completions as memoised steps, drafts while the answer streams. One run is an
``LlmTurn`` (``acf.pipelines.llm.turn``).
"""

import hashlib
import json
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from acf.config.pipelines import LlmPipelineFields
from acf.domain.replies import PipelineResult
from acf.domain.tools import ToolSpec
from acf.pipelines.llm.completion import Completer
from acf.pipelines.llm.enforcement import Rules
from acf.pipelines.llm.prompt import PromptSource
from acf.pipelines.llm.tool_schemas import ToolSchemas, tool_schemas
from acf.pipelines.llm.turn import LlmTurn, Setup
from acf.ports.pipeline import TurnContext


@runtime_checkable
class Closable(Protocol):
    async def aclose(self) -> None: ...


def llm_version(fields: LlmPipelineFields, prompt: PromptSource, schemas: ToolSchemas) -> str:
    """A content hash of what shapes the agent's answers: its fields, prompt and tools."""
    body = {
        "fields": fields.model_dump(mode="json"),
        "prompt": [prompt.template, prompt.tenant_display_name],
        "functions": list(schemas.functions),
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class LlmPipeline:
    """Implements ``Pipeline`` for one agent. Raises ``InvalidValue`` when its tools cannot
    be offered to a model (a reserved name, two names the model could not tell apart)."""

    def __init__(
        self,
        fields: LlmPipelineFields,
        prompt: PromptSource,
        tools: Sequence[ToolSpec],
        completer: Completer,
        name: str = "llm",
        version: str | None = None,
    ) -> None:
        schemas = tool_schemas(tools)
        self.setup = Setup(
            fields, prompt, schemas, tuple(tools), Rules.from_fields(fields.enforcement), completer
        )
        self.name = name
        self.version = version or llm_version(fields, prompt, schemas)

    async def run(self, ctx: TurnContext) -> PipelineResult:
        return await LlmTurn(self.setup, ctx).run()

    async def aclose(self) -> None:
        """Close the model client's connections (when it has any)."""
        completer = self.setup.completer
        if isinstance(completer, Closable):
            await completer.aclose()
