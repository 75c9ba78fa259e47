"""The replay's token metering: what a strategy pays with and without cancelling superseded
generations (a stand-in with an LLM's timing, on the real runtime and the virtual clock)."""

from acf.domain.channels import Channel
from acf.replay.simulate import default_strategies, simulate
from acf.replay.sources import ChatLine
from acf.replay.tokens import TokenModel

MODEL = TokenModel(ttft_ms=300, tokens_per_s=30, answer_tokens=60, prompt_tokens=100)


def test_a_generation_streams_after_its_first_token_at_its_speed() -> None:
    assert MODEL.latency_ms == 2300
    assert [MODEL.streamed(ms) for ms in (0, 300, 1300, 2300, 9000)] == [0, 0, 30, 60, 60]


def _lines() -> list[ChatLine]:
    """A customer corrects themself 1.3 s after writing: past acf's window, mid-generation."""
    lines = []
    for conv in range(3):
        t = conv * 600_000
        lines += [
            ChatLine(str(conv), "ann", t, "I want to change my delivery address"),
            ChatLine(str(conv), "ann", t + 1_300, "wait, the billing one"),
            ChatLine(str(conv), "bob", t + 30_000, "sure, to what?"),
        ]
    return lines


async def test_acf_pays_less_than_naive_and_cancelled_generations_stop_early() -> None:
    strategies = {s.name: s for s in default_strategies(Channel.WEB, typing=False)}
    acf = await simulate(_lines(), strategies["acf adaptive"], 0, Channel.WEB, tokens=MODEL)
    naive = await simulate(_lines(), strategies["naive"], 0, Channel.WEB, tokens=MODEL)
    assert acf.tokens is not None and naive.tokens is not None
    assert naive.tokens.requests == 9 and naive.tokens.cancelled == 0
    assert naive.tokens.completion == 9 * 60  # every answer streamed to its end
    assert acf.tokens.cancelled == 3  # each correction cancelled the generation in flight
    assert 0 < acf.tokens.cancelled_used < acf.tokens.cancelled_would_use / 2
    assert acf.tokens.paid < naive.tokens.paid
    assert acf.replies == 6  # one answer per run, not one per message
    # what cancelling saved: the answer tokens the three generations did not stream
    saved = acf.tokens.cancelled_would_use - acf.tokens.cancelled_used
    assert acf.tokens.saved == saved > 0
    assert acf.tokens_saved_per_100 == 100 * saved / 9
    assert naive.tokens_saved_per_100 == 0.0
    # the cancelled generations are the superseded runs; their time was wasted
    assert acf.superseded_runs == 3 and 0 < acf.wasted_ms < 3 * MODEL.latency_ms
    assert (naive.superseded_runs, naive.wasted_ms) == (0, 0)
