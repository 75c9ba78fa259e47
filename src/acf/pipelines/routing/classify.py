"""The router's classifier (DESIGN §16, seed 004 Story 4): when no command, open agent
session, keyword or regex decides a turn and some routing rule describes its route in words
(``classify``), one chat completion of the classifier route's model picks the route.

The request: a system message listing each classifying route with its description, and
``none``; the customer's text (its last ``TEXT_CHARS`` characters) as the user message;
temperature 0 and a few tokens, so that the answer is a route's name. The answer counts
only when it is exactly a candidate's name (after stripping and case folding); anything
else, ``none`` included, is no route.

It runs as the turn step ``router.classify``, keyed by its request, so a retry or a
recovery of the turn reuses the answer (and takes the same route) instead of asking again.
A failure (the model unavailable, any error of its client, ``classifier_timeout_s`` spent)
is no route either: stored as the step's answer, logged, and reported by its class name
only (an endpoint's error text may hold what it should not show).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acf.config.pipelines import NO_ROUTE, PriceFields, RouterPipelineFields
from acf.domain.errors import InvalidValue
from acf.pipelines.llm.completion import Completer
from acf.pipelines.llm.pipeline import LlmPipeline
from acf.pipelines.llm.turn import site_of
from acf.pipelines.llm.usage import completion_event
from acf.pipelines.routing.decide import RouteRule, classifying
from acf.ports.pipeline import Pipeline, TurnContext

STEP = "router.classify"
TEXT_CHARS = 2000
"""The end of the turn's text the classifier reads: recent words weigh most, and the bound
caps what a long message costs."""
MAX_TOKENS = 32
"""Room for a route's name, not for an essay."""
PURPOSE = "classify"
"""The ``purpose`` of the classifier's ``llm.completion`` event (metrics count its tokens)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the classifier found: a candidate route, or None; ``error``, the class name of
    the failure that left it without an answer."""

    route: str | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"route": self.route, "error": self.error}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "Verdict":
        route, error = raw.get("route"), raw.get("error")
        return cls(
            route if isinstance(route, str) else None, error if isinstance(error, str) else None
        )


def classify_request(candidates: Mapping[str, str], text: str) -> dict[str, Any]:
    """The chat-completions request (without ``model``) that asks which of ``candidates``
    (route → description) fits ``text``."""
    listed = "\n".join(f"- {route}: {description}" for route, description in candidates.items())
    system = (
        "You decide which service should handle a customer's message.\n"
        f"The services:\n{listed}\n- {NO_ROUTE}: none of the services above fits.\n"
        "Answer with the name of exactly one service of this list, as written, and nothing "
        "else."
    )
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": text[-TEXT_CHARS:]},
        ],
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
    }


def parse_answer(answer: str, candidates: Mapping[str, str]) -> str | None:
    """The candidate route ``answer`` names exactly (stripped, case-folded), else None."""
    said = answer.strip().casefold()
    return next((route for route in candidates if route.casefold() == said), None)


class Classifier:
    """Asks ``completer`` (the classifier route's model) which of ``candidates`` fits a
    turn; ``prices`` price its completion, ``timeout_ms`` bounds the asking."""

    def __init__(
        self,
        completer: Completer,
        candidates: Mapping[str, str],
        *,
        timeout_ms: int,
        prices: Mapping[str, PriceFields] | None = None,
    ) -> None:
        self.completer = completer
        self.candidates = dict(candidates)
        self.timeout_ms = timeout_ms
        self.prices = dict(prices or {})

    async def classify(self, ctx: TurnContext, text: str) -> Verdict:
        """The route for ``text``, asked once per turn group (``ctx.step``); never raises
        but for a cancellation."""

        async def ask(request: dict[str, Any]) -> dict[str, Any]:
            deadline_ms = min(ctx.deadline_ms, ctx.clock.now_ms() + self.timeout_ms)
            try:
                completion = await self.completer.complete(
                    request, clock=ctx.clock, deadline_ms=deadline_ms, on_event=ctx.emit
                )
            except Exception as exc:  # the turn goes on without the classifier
                ctx.log.warning("router.classify_failed", error=type(exc).__name__)
                return Verdict(None, type(exc).__name__).to_json()
            agent = site_of(ctx, None).agent
            await ctx.emit(
                "llm.completion", completion_event(completion, self.prices, agent, PURPOSE)
            )
            return Verdict(parse_answer(completion.text, self.candidates)).to_json()

        raw = await ctx.step(STEP, ask, classify_request(self.candidates, text))
        return Verdict.from_json(raw)


def classifier_of(
    fields: RouterPipelineFields,
    rules: tuple[RouteRule, ...],
    children: Mapping[str, Pipeline],
) -> Classifier | None:
    """The classifier of a router: over its classifier route's model, None when no rule
    classifies. Raises ``InvalidValue`` when that route's pipeline is not an LLM agent."""
    route = fields.classifier_route
    if route is None:
        return None
    child = children[route]
    if not isinstance(child, LlmPipeline):
        raise InvalidValue(f"classifier: the route {route!r} is not an llm pipeline")
    return Classifier(
        child.setup.completer,
        classifying(rules),
        timeout_ms=round(fields.classifier_timeout_s * 1000),
        prices=child.setup.fields.prices,
    )
