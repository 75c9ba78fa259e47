"""Usage of a turn's model calls: tokens, cost from the price table, time to first token,
and the progress event that the metrics count."""

from acf.config.pipelines import PriceFields
from acf.pipelines.llm.completion import Completion, ToolCall, Usage
from acf.pipelines.llm.usage import UsageTally, completion_event, cost_of

PRICES = {"big": PriceFields(input=2.5, output=10.0)}


def test_cost_is_per_million_tokens_and_none_without_a_price() -> None:
    assert cost_of(PRICES, "big", Usage(1_000_000, 100_000)) == 3.5
    assert cost_of(PRICES, "big", Usage(3, 1)) == 0.0000175
    assert cost_of(PRICES, "small", Usage(1000, 1000)) is None


def test_a_tally_adds_completions_and_keeps_the_first_ttft() -> None:
    tally = UsageTally(PRICES)
    tally.add(Completion("big", "", usage=Usage(1000, 10), ttft_ms=400, requests=2), reused=False)
    tally.add(Completion("small", "hi", usage=Usage(500, 5), ttft_ms=100), reused=False)
    tally.add(Completion("big", "hi", usage=Usage(1000, 20), ttft_ms=90), reused=True)
    tally.tool_rounds = 1
    assert tally.details() == {
        "models": ["big", "small"],
        "prompt_tokens": 2500,
        "completion_tokens": 35,
        "cost": round((2000 * 2.5 + 30 * 10.0) / 1_000_000, 8),
        "requests": 4,
        "completions": 3,
        "reused_completions": 1,
        "ttft_ms": 400,
        "tool_rounds": 1,
    }


def test_a_reused_completion_does_not_set_the_ttft() -> None:
    tally = UsageTally({})
    tally.add(Completion("m", "x", ttft_ms=90), reused=True)
    tally.add(Completion("m", "y", ttft_ms=300), reused=False)
    assert tally.ttft_ms == 300 and tally.cost is None


def test_the_completion_event() -> None:
    completion = Completion(
        "big", "", (ToolCall("c", "f", "{}"),), usage=Usage(10, 2), ttft_ms=120, requests=3
    )
    assert completion_event(completion, PRICES, "support", "reply") == {
        "agent": "support",
        "model": "big",
        "purpose": "reply",
        "prompt_tokens": 10,
        "completion_tokens": 2,
        "requests": 3,
        "tool_calls": 1,
        "cost": 0.000045,
        "ttft_ms": 120,
    }
    bare = completion_event(Completion("small", "x"), PRICES, "a", "summary")
    assert "cost" not in bare and "ttft_ms" not in bare
