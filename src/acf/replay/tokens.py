"""What a replayed LLM pipeline pays in tokens, with and without cancelling superseded work.

The replay cannot run a model; it runs a stand-in with the timing and the billing of one
streaming completion per turn: the request (``prompt_tokens`` for the system prompt, tools
and history, plus one token per four characters of the turn's messages) is paid when it is
sent; the answer (``answer_tokens``) streams after ``ttft_ms`` at ``tokens_per_s``. A
generation cancelled by a supersede (acf closes the stream) pays the prompt and the tokens
streamed until then; a strategy that never cancels pays every answer in full. Its runs are
reported to a ``PipelineMeter``, as the plain pause's are.
"""

import asyncio
import math
from dataclasses import dataclass

from acf.domain.replies import PipelineResult
from acf.ports.pipeline import TurnContext
from acf.replay.meter import PipelineMeter


@dataclass(frozen=True, slots=True)
class TokenModel:
    ttft_ms: int = 300
    tokens_per_s: float = 30.0
    answer_tokens: int = 60
    prompt_tokens: int = 1000
    """The system prompt, the tool schemas and the history, per request."""

    @property
    def latency_ms(self) -> int:
        """The time one uncancelled generation takes."""
        return self.ttft_ms + math.ceil(self.answer_tokens / self.tokens_per_s * 1000)

    def streamed(self, elapsed_ms: int) -> int:
        """Answer tokens streamed ``elapsed_ms`` after the request was sent."""
        if elapsed_ms <= self.ttft_ms:
            return 0
        produced = int((elapsed_ms - self.ttft_ms) / 1000 * self.tokens_per_s)
        return min(self.answer_tokens, produced)


@dataclass(slots=True)
class TokenTally:
    requests: int = 0
    prompt: int = 0
    completion: int = 0
    cancelled: int = 0
    cancelled_would_use: int = 0
    """Answer tokens the cancelled generations would have streamed to the end."""
    cancelled_used: int = 0
    """Answer tokens they streamed before their stream was closed."""

    @property
    def paid(self) -> int:
        return self.prompt + self.completion

    @property
    def saved(self) -> int:
        """Answer tokens not paid because their stream was closed."""
        return self.cancelled_would_use - self.cancelled_used


class MeteredGeneration:
    """The replay's pipeline: one metered streaming completion per turn."""

    name = "metered-llm"
    version = "1"

    def __init__(self, model: TokenModel, meter: PipelineMeter | None = None) -> None:
        self.model = model
        self.tally = TokenTally()
        self.meter = meter or PipelineMeter()

    async def run(self, ctx: TurnContext) -> PipelineResult:
        model, tally = self.model, self.tally
        chars = sum(len(m.text or "") for m in ctx.messages)
        tally.requests += 1
        tally.prompt += model.prompt_tokens + math.ceil(chars / 4)
        started = ctx.clock.now_ms()
        try:
            await ctx.clock.sleep(model.latency_ms / 1000)
        except asyncio.CancelledError:
            used = model.streamed(ctx.clock.now_ms() - started)
            tally.completion += used
            tally.cancelled += 1
            tally.cancelled_used += used
            tally.cancelled_would_use += model.answer_tokens
            raise
        finally:
            self.meter.record(ctx, ctx.clock.now_ms() - started)
        tally.completion += model.answer_tokens
        return PipelineResult.reply("ok")
