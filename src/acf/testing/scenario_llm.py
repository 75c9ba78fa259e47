"""The LLM part of the scenario format: ``model:`` makes the scenario's agent the built-in
LLM agent (``kind: llm``) on a scripted model on the virtual clock (``ScriptedModel``), and
four expectations check what it did (``model_requests``, ``model_cancelled``,
``outcomes``, ``model_requests_containing``). Documented in ``docs/scenarios.md``."""

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from acf.config.pipelines import LlmPipelineFields
from acf.domain.tools import ToolSpec
from acf.domain.turns import TurnPhase
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.llm.prompt import PromptSource
from acf.testing import invariants
from acf.testing.harness import Harness
from acf.testing.model import ScriptedAnswer, ScriptedCall, ScriptedModel

if TYPE_CHECKING:
    from acf.testing.scenarios import Scenario

SCRIPTED_URL = "http://scripted.invalid/v1"
"""Never asked: a scenario's model is in-process."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallSpec(_Model):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class AnswerSpec(_Model):
    text: str = ""
    tool_calls: list[CallSpec] = Field(default_factory=list)
    when: str | None = None
    """Only for a request whose newest message contains this text."""


class ModelSpec(_Model):
    """The agent is the built-in LLM agent on a scripted model; ``pipeline`` is unused."""

    name: str = "scripted"
    ttft_ms: int = Field(0, ge=0)
    tokens_per_s: float = Field(0.0, ge=0)
    answers: list[AnswerSpec] = Field(default_factory=list)
    default: str = "OK."
    llm: dict[str, Any] = Field(default_factory=dict)
    """More fields of the ``llm`` pipeline (``system_prompt``, ``max_tool_rounds``,
    ``enforcement`` ...); ``kind``, ``model`` and ``base_url`` are set for you."""

    def fields(self) -> LlmPipelineFields:
        body = {**self.llm, "kind": "llm", "model": self.name, "base_url": SCRIPTED_URL}
        return LlmPipelineFields.model_validate(body)

    def scripted(self) -> ScriptedModel:
        answers = [
            ScriptedAnswer(
                a.text, tuple(ScriptedCall(c.name, c.arguments) for c in a.tool_calls), a.when
            )
            for a in self.answers
        ]
        return ScriptedModel(
            answers,
            model=self.name,
            ttft_ms=self.ttft_ms,
            tokens_per_s=self.tokens_per_s,
            default=self.default,
        )

    def pipeline(self, tools: Sequence[ToolSpec]) -> LlmPipeline:
        fields = self.fields()
        return LlmPipeline(fields, PromptSource(fields.system_prompt), tools, self.scripted())


async def check(h: Harness, s: "Scenario") -> list[str]:
    """The LLM expectations of ``s`` against what its scripted model and turns did."""
    e = s.expect
    problems: list[str] = []
    wanted = (e.model_requests, e.model_cancelled, e.outcomes)
    if all(x is None for x in wanted) and not e.model_requests_containing:
        return problems
    pipeline = h.options.pipeline
    model = pipeline.setup.completer if isinstance(pipeline, LlmPipeline) else None
    if not isinstance(model, ScriptedModel):
        return [
            "model_requests, model_cancelled, outcomes and model_requests_containing need a "
            "scenario `model:`"
        ]
    if e.model_requests is not None and len(model.requests) != e.model_requests:
        problems.append(f"model requests: expected {e.model_requests}, got {len(model.requests)}")
    if e.model_cancelled is not None and model.cancelled != e.model_cancelled:
        problems.append(f"model cancelled: expected {e.model_cancelled}, got {model.cancelled}")
    asked = [json.dumps(r.get("messages"), ensure_ascii=False) for r in model.requests]
    for text, count in e.model_requests_containing.items():
        # Compared as JSON text: the wanted text's own quotes and line breaks escaped alike.
        needle = json.dumps(text, ensure_ascii=False)[1:-1]
        seen = sum(needle in request for request in asked)
        if seen != count:
            problems.append(f"model requests containing {text!r}: expected {count}, got {seen}")
    if e.outcomes is not None:
        ended: list[tuple[int, str]] = []
        for session in await invariants.sessions_of(h.store, s.tenants):
            for turn in await h.store.turns.list_turns(session.tenant, session.session_id):
                record = await h.store.turns.get_record(session.tenant, turn.turn_id)
                if turn.phase is TurnPhase.COMMITTED and record is not None:
                    ended += [(record.ended_at_ms, o) for o in record.details.get("outcomes", ())]
        got = [outcome for _, outcome in sorted(ended)]
        if got != e.outcomes:
            problems.append(f"outcomes: expected {e.outcomes}, got {got}")
    return problems
