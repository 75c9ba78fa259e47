"""What a turn's model calls cost: tokens, money from the configured price table, time to
first token, requests and tool rounds (DESIGN §16). It goes into the TurnRecord
(``PipelineResult.details["llm"]``); the metrics count the ``llm.completion`` progress
event each new completion emits (``completion_event``), so a completion reused from the
step memo by a recovery is in the record but paid (and counted) once.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acf.config.pipelines import PriceFields
from acf.pipelines.llm.completion import Completion, Usage

PER_TOKENS = 1_000_000
COST_DIGITS = 8


def cost_of(prices: Mapping[str, PriceFields], model: str, usage: Usage) -> float | None:
    """The cost of ``usage`` on ``model``; ``None`` when the model has no price."""
    price = prices.get(model)
    if price is None:
        return None
    cost = (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / (
        PER_TOKENS
    )
    return round(cost, COST_DIGITS)


def completion_event(
    completion: Completion, prices: Mapping[str, PriceFields], agent: str, purpose: str
) -> dict[str, Any]:
    """The data of the ``llm.completion`` progress event of one new completion."""
    data: dict[str, Any] = {
        "agent": agent,
        "model": completion.model,
        "purpose": purpose,
        "prompt_tokens": completion.usage.prompt_tokens,
        "completion_tokens": completion.usage.completion_tokens,
        "requests": completion.requests,
        "tool_calls": len(completion.tool_calls),
    }
    cost = cost_of(prices, completion.model, completion.usage)
    if cost is not None:
        data["cost"] = cost
    if completion.ttft_ms is not None:
        data["ttft_ms"] = completion.ttft_ms
    return data


@dataclass(slots=True)
class UsageTally:
    """The completions of one turn, added as they are used."""

    prices: Mapping[str, PriceFields]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    requests: int = 0
    completions: int = 0
    reused: int = 0
    """Completions taken from the step memo (an earlier attempt paid for them)."""
    ttft_ms: int | None = None
    """The first completion's time to first token: what the customer waited for."""
    tool_rounds: int = 0
    models: list[str] = field(default_factory=list)

    def add(self, completion: Completion, reused: bool) -> None:
        self.completions += 1
        self.reused += int(reused)
        self.prompt_tokens += completion.usage.prompt_tokens
        self.completion_tokens += completion.usage.completion_tokens
        self.requests += completion.requests
        if self.ttft_ms is None and completion.ttft_ms is not None and not reused:
            self.ttft_ms = completion.ttft_ms
        if completion.model not in self.models:
            self.models.append(completion.model)
        cost = cost_of(self.prices, completion.model, completion.usage)
        if cost is not None:
            self.cost = round((self.cost or 0.0) + cost, COST_DIGITS)

    def details(self) -> dict[str, Any]:
        """The TurnRecord's ``llm`` details."""
        return {
            "models": list(self.models),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
            "requests": self.requests,
            "completions": self.completions,
            "reused_completions": self.reused,
            "ttft_ms": self.ttft_ms,
            "tool_rounds": self.tool_rounds,
        }
